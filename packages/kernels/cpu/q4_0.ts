/**
 * Q4_0: blocks of 32 values, 4-bit levels around 8 with one fp16 scale (18 bytes: d, 16 nibble
 * bytes, the first 16 values in the low nibbles). Bit-identical to libggml's
 * `quantize_row_q4_0_ref` / `dequantize_row_q4_0`.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { checkBlocks, signedAbsMax32 } from "./blocks.ts";

const fr = Math.fround;
const QK = 32;
const TYPE_SIZE = 18;

/** Quantize `src` (a multiple of 32 values) to Q4_0 blocks in `dst` (18 bytes per block). */
export function quantizeQ4_0(src: Float32Array, dst: Uint8Array): void {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const nb = checkBlocks("quantizeQ4_0", src.length, dst.length, QK, TYPE_SIZE, true);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK, y += TYPE_SIZE) {
    const max = signedAbsMax32(src, bits, x);
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0; // C: `d ? 1/d : 0`, NaN is true
    const h = f32ToF16(d);
    dst[y] = h;
    dst[y + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) {
      // C: MIN(15, (int8_t)(x*id + 8.5f)). |x*id| <= 8 (to rounding), so the sum is in
      // [0.5, 16.5] and truncates to 0..16; NaN (and infinity) convert to 0 as in C
      let q0 = fr(fr(src[x + j] * id) + 8.5) | 0;
      let q1 = fr(fr(src[x + j + 16] * id) + 8.5) | 0;
      if (q0 > 15) q0 = 15;
      if (q1 > 15) q1 = 15;
      dst[y + 2 + j] = q0 | (q1 << 4);
    }
  }
}

/** Dequantize Q4_0 blocks in `src` into `dst` (a multiple of 32 values). */
export function dequantizeQ4_0(src: Uint8Array, dst: Float32Array): void {
  const nb = checkBlocks("dequantizeQ4_0", dst.length, src.length, QK, TYPE_SIZE, false);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += TYPE_SIZE, y += QK) {
    const d = F16_TO_F32[src[x] | (src[x + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const b = src[x + 2 + j];
      dst[y + j] = ((b & 0xf) - 8) * d;
      dst[y + j + 16] = ((b >> 4) - 8) * d;
    }
  }
}
