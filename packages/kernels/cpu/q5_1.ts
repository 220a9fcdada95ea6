/**
 * Q5_1: blocks of 32 values, 5-bit levels above a minimum with an fp16 scale and fp16 minimum
 * (24 bytes: d, m, 4 bytes of high bits as a little-endian u32 with bit j for value j, 16
 * low-nibble bytes with the first 16 values in the low nibbles). Bit-identical to libggml's
 * `quantize_row_q5_1_ref` / `dequantize_row_q5_1`.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { checkBlocks, minMax32 } from "./blocks.ts";

const fr = Math.fround;
const QK = 32;
const TYPE_SIZE = 24;
const MIN_MAX = new Float32Array(2);

/** Quantize `src` (a multiple of 32 values) to Q5_1 blocks in `dst` (24 bytes per block). */
export function quantizeQ5_1(src: Float32Array, dst: Uint8Array): void {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const nb = checkBlocks("quantizeQ5_1", src.length, dst.length, QK, TYPE_SIZE, true);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK, y += TYPE_SIZE) {
    minMax32(src, bits, x, MIN_MAX);
    const min = MIN_MAX[0], max = MIN_MAX[1];
    const d = fr(fr(max - min) / 31);
    const id = d !== 0 ? fr(1 / d) : 0;
    const hd = f32ToF16(d), hm = f32ToF16(min);
    dst[y] = hd;
    dst[y + 1] = hd >>> 8;
    dst[y + 2] = hm;
    dst[y + 3] = hm >>> 8;
    let qh0 = 0, qh1 = 0;
    for (let j = 0; j < 16; j++) {
      // C: (uint8_t)((x - min)*id + 0.5f), no clamp
      const q0 = fr(fr(fr(src[x + j] - min) * id) + 0.5) & 0xff;
      const q1 = fr(fr(fr(src[x + j + 16] - min) * id) + 0.5) & 0xff;
      dst[y + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh0 |= ((q0 & 0x10) >> 4) << j;
      qh1 |= ((q1 & 0x10) >> 4) << j;
    }
    dst[y + 4] = qh0;
    dst[y + 5] = qh0 >>> 8;
    dst[y + 6] = qh1;
    dst[y + 7] = qh1 >>> 8;
  }
}

/** Dequantize Q5_1 blocks in `src` into `dst` (a multiple of 32 values). */
export function dequantizeQ5_1(src: Uint8Array, dst: Float32Array): void {
  const nb = checkBlocks("dequantizeQ5_1", dst.length, src.length, QK, TYPE_SIZE, false);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += TYPE_SIZE, y += QK) {
    const d = F16_TO_F32[src[x] | (src[x + 1] << 8)];
    const m = F16_TO_F32[src[x + 2] | (src[x + 3] << 8)];
    const qh = src[x + 4] | (src[x + 5] << 8) | (src[x + 6] << 16) | (src[x + 7] << 24);
    for (let j = 0; j < 16; j++) {
      const b = src[x + 8 + j];
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = fr(((b & 0xf) | h0) * d) + m;
      dst[y + j + 16] = fr(((b >> 4) | h1) * d) + m;
    }
  }
}
