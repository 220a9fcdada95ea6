/**
 * Q4_0 in WGSL: 32 values per 18-byte block (fp16 `d`, 16 bytes of nibbles, first half in the
 * low nibbles). Quantization follows `quantize_row_q4_0_ref`: `max` = first element of largest
 * |x|, `d = max / -8`, `id = 1/d` (both correctly rounded), `q = min(15, trunc(x*id + 8.5))` with
 * the product rounded before the add.
 * @module
 */
import type { Block32Format } from "./block32.ts";

/** The Q4_0 block format for the block32 skeletons. */
export const Q4_0_FORMAT: Block32Format = {
  name: "q4_0",
  bytes: 18,
  encode: /* wgsl */ `
fn encode_block(o: u32, off: u32, w: ptr<function, array<u32, LW>>) {
  var amax = 0.0;
  var mx = 0.0;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let v = tile[o + j];
    if (amax < abs(v)) {
      amax = abs(v);
      mx = v;
    }
  }
  let d = div_exact(mx, -8.0);
  var id = 0.0;
  if (!is_zero_bits(d)) { id = div_exact(1.0, d); }
  let h = f32_to_f16_bits(d);
  put(w, off, h);
  put(w, off + 1u, h >> 8u);
  for (var j = 0u; j < 16u; j = j + 1u) {
    let a = opq(tile[o + j] * id) + 8.5;
    let b = opq(tile[o + 16u + j] * id) + 8.5;
    let q0 = u32(min(15, i32(a)));
    let q1 = u32(min(15, i32(b)));
    put(w, off + 2u + j, q0 | (q1 << 4u));
  }
}
`,
  decode: /* wgsl */ `
fn decode4(base: u32, j: u32) -> vec4<f32> {
  let d = f16_bits_to_f32(s_u16(base));
  let sh = select(0u, 4u, j >= 16u);
  let w = s_u32(base + 2u + (j & 15u)) >> sh;
  let q = vec4<i32>(
    i32(w & 15u), i32((w >> 8u) & 15u), i32((w >> 16u) & 15u), i32((w >> 24u) & 15u),
  ) - vec4<i32>(8);
  return d * vec4<f32>(q);
}
`,
};
