/**
 * Q8_0 in WGSL: 32 values per 34-byte block (fp16 `d`, 32 int8). Quantization follows
 * `quantize_row_q8_0_ref`: `d = amax / 127`, `id = 1/d` (both correctly rounded),
 * `q = roundf(x*id)` rounding half away from zero.
 * @module
 */
import type { Block32Format } from "./block32.ts";

/** The Q8_0 block format for the block32 skeletons. */
export const Q8_0_FORMAT: Block32Format = {
  name: "q8_0",
  bytes: 34,
  encode: /* wgsl */ `
fn round_away(t: f32) -> i32 {
  let a = abs(t);
  let f = floor(a);
  var r = f;
  if (a - f >= 0.5) { r = f + 1.0; }
  let i = i32(r);
  return select(i, -i, t < 0.0);
}

fn encode_block(o: u32, off: u32, w: ptr<function, array<u32, LW>>) {
  var amax = 0.0;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let v = abs(tile[o + j]);
    if (v > amax) { amax = v; }
  }
  let d = div_exact(amax, 127.0);
  var id = 0.0;
  if (!is_zero_bits(d)) { id = div_exact(1.0, d); }
  let h = f32_to_f16_bits(d);
  put(w, off, h);
  put(w, off + 1u, h >> 8u);
  for (var j = 0u; j < 32u; j = j + 1u) {
    put(w, off + 2u + j, u32(round_away(opq(tile[o + j] * id))));
  }
}
`,
  decode: /* wgsl */ `
fn decode4(base: u32, j: u32) -> vec4<f32> {
  let d = f16_bits_to_f32(s_u16(base));
  let w = s_u32(base + 2u + j);
  let q = vec4<i32>(
    i32(w << 24u) >> 24u, i32(w << 16u) >> 24u, i32(w << 8u) >> 24u, i32(w) >> 24u,
  );
  return d * vec4<f32>(q);
}
`,
};
