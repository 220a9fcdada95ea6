/**
 * Q5_0: blocks of 32 values, 5-bit levels around 16 with one fp16 scale (22 bytes: d, 4 bytes of
 * high bits as a little-endian u32 with bit j for value j, 16 low-nibble bytes with the first 16
 * values in the low nibbles). Bit-identical to libggml's `quantize_row_q5_0_ref` /
 * `dequantize_row_q5_0`.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { checkBlocks, signedAbsMax32 } from "./blocks.ts";

const fr = Math.fround;
const QK = 32;
const TYPE_SIZE = 22;

/** Quantize `src` (a multiple of 32 values) to Q5_0 blocks in `dst` (22 bytes per block). */
export function quantizeQ5_0(src: Float32Array, dst: Uint8Array): void {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const nb = checkBlocks("quantizeQ5_0", src.length, dst.length, QK, TYPE_SIZE, true);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK, y += TYPE_SIZE) {
    const max = signedAbsMax32(src, bits, x);
    const d = fr(max / -16);
    const id = d !== 0 ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[y] = h;
    dst[y + 1] = h >>> 8;
    let qh0 = 0, qh1 = 0;
    for (let j = 0; j < 16; j++) {
      // C: MIN(31, (int8_t)(x*id + 16.5f)). |x*id| <= 16 (to rounding), so the sum is in
      // [0.5, 32.5] and truncates to 0..32; NaN (and infinity) convert to 0 as in C
      let q0 = fr(fr(src[x + j] * id) + 16.5) | 0;
      let q1 = fr(fr(src[x + j + 16] * id) + 16.5) | 0;
      if (q0 > 31) q0 = 31;
      if (q1 > 31) q1 = 31;
      dst[y + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh0 |= ((q0 & 0x10) >> 4) << j;
      qh1 |= ((q1 & 0x10) >> 4) << j;
    }
    dst[y + 2] = qh0;
    dst[y + 3] = qh0 >>> 8;
    dst[y + 4] = qh1;
    dst[y + 5] = qh1 >>> 8;
  }
}

/** Dequantize Q5_0 blocks in `src` into `dst` (a multiple of 32 values). */
export function dequantizeQ5_0(src: Uint8Array, dst: Float32Array): void {
  const nb = checkBlocks("dequantizeQ5_0", dst.length, src.length, QK, TYPE_SIZE, false);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += TYPE_SIZE, y += QK) {
    const d = F16_TO_F32[src[x] | (src[x + 1] << 8)];
    const qh = src[x + 2] | (src[x + 3] << 8) | (src[x + 4] << 16) | (src[x + 5] << 24);
    for (let j = 0; j < 16; j++) {
      const b = src[x + 6 + j];
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = (((b & 0xf) | h0) - 16) * d;
      dst[y + j + 16] = (((b >> 4) | h1) - 16) * d;
    }
  }
}
