/**
 * WGSL dequantizers for the 256-element k-quant super-blocks q4_k (144 bytes), q5_k (176) and
 * q6_k (210), one thread per 4 outputs, with the same float32 operations as libggml /
 * gguf-py: `(d*sc)*q - dmin*m` (the product rounded before the subtraction) for q4_k / q5_k,
 * `(d*sc)*q` for q6_k.
 * @module
 */
import { dequantizeKernelWgsl } from "./common.ts";

/** The k-quant types the WebGPU backend dequantizes. */
export type KQuantType = "q4_k" | "q5_k" | "q6_k";

/** Bytes per 256-value super-block. */
export const KQUANT_TYPE_SIZE: Record<KQuantType, number> = { q4_k: 144, q5_k: 176, q6_k: 210 };

const SCALE_MIN_K4 = /* wgsl */ `
// (scale, min) of sub-block j from the 12 packed 6-bit bytes at s
fn scale_min_k4(s: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(s_byte(s + j) & 63u, s_byte(s + j + 4u) & 63u);
  }
  let sc = (s_byte(s + j + 4u) & 15u) | ((s_byte(s + j - 4u) >> 6u) << 4u);
  let m = (s_byte(s + j + 4u) >> 4u) | ((s_byte(s + j) >> 6u) << 4u);
  return vec2<u32>(sc, m);
}

// (d * scale, dmin * min) of the sub-block of 32 holding value y of the super-block at base
fn sub_scale_min(base: u32, y: u32) -> vec2<f32> {
  let d = f16_bits_to_f32(s_u16(base));
  let dmin = f16_bits_to_f32(s_u16(base + 2u));
  let sm = scale_min_k4(base + 4u, y >> 5u);
  return vec2<f32>(d * f32(sm.x), dmin * f32(sm.y));
}
`;

const DECODE: Record<KQuantType, string> = {
  q4_k: /* wgsl */ `
${SCALE_MIN_K4}
fn decode4(base: u32, y: u32) -> vec4<f32> {
  let dm = sub_scale_min(base, y);
  let d1 = dm.x;
  let m1 = dm.y;
  let jj = y >> 6u;
  let hi = (y >> 5u) & 1u;
  let l = y & 31u;
  let w = s_u32(base + 16u + 32u * jj + l) >> (4u * hi);
  let q = vec4<f32>(vec4<u32>(w & 15u, (w >> 8u) & 15u, (w >> 16u) & 15u, (w >> 24u) & 15u));
  return vec4<f32>(opq(d1 * q.x) - m1, opq(d1 * q.y) - m1, opq(d1 * q.z) - m1, opq(d1 * q.w) - m1);
}
`,
  q5_k: /* wgsl */ `
${SCALE_MIN_K4}
fn decode4(base: u32, y: u32) -> vec4<f32> {
  let dm = sub_scale_min(base, y);
  let d1 = dm.x;
  let m1 = dm.y;
  let jj = y >> 6u;
  let hi = (y >> 5u) & 1u;
  let l = y & 31u;
  let w = s_u32(base + 48u + 32u * jj + l) >> (4u * hi);
  let h = s_u32(base + 16u + l) >> (2u * jj + hi);
  let q = vec4<f32>(vec4<u32>(
    (w & 15u) | ((h & 1u) << 4u),
    ((w >> 8u) & 15u) | (((h >> 8u) & 1u) << 4u),
    ((w >> 16u) & 15u) | (((h >> 16u) & 1u) << 4u),
    ((w >> 24u) & 15u) | (((h >> 24u) & 1u) << 4u),
  ));
  return vec4<f32>(opq(d1 * q.x) - m1, opq(d1 * q.y) - m1, opq(d1 * q.z) - m1, opq(d1 * q.w) - m1);
}
`,
  q6_k: /* wgsl */ `
fn decode4(base: u32, y: u32) -> vec4<f32> {
  let d = f16_bits_to_f32(s_u16(base + 208u));
  let half = y >> 7u;
  let r = y & 127u;
  let k = r >> 5u;
  let l = r & 31u;
  let w = s_u32(base + 64u * half + l + 32u * (k & 1u)) >> (4u * (k >> 1u));
  let h = s_u32(base + 128u + 32u * half + l) >> (2u * k);
  let sc = i32(s_byte(base + 192u + 8u * half + (l >> 4u) + 2u * k) << 24u) >> 24u;
  let dl = d * f32(sc);
  let q = vec4<i32>(vec4<u32>(
    (w & 15u) | ((h & 3u) << 4u),
    ((w >> 8u) & 15u) | (((h >> 8u) & 3u) << 4u),
    ((w >> 16u) & 15u) | (((h >> 16u) & 3u) << 4u),
    ((w >> 24u) & 15u) | (((h >> 24u) & 3u) << 4u),
  )) - vec4<i32>(32);
  return dl * vec4<f32>(q);
}
`,
};

/**
 * Dequantize kernel for `type`, one thread per 4 values. Bindings: 1 `src` u32 (read), 2 `dst`
 * vec4<f32> (write). `P.n` = values / 4 in the chunk.
 */
export function kquantDequantizeWgsl(type: KQuantType): string {
  return dequantizeKernelWgsl(DECODE[type], 8, KQUANT_TYPE_SIZE[type]);
}
