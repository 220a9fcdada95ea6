/**
 * Q4_1: blocks of 32 values, 4-bit levels above a minimum with an fp16 scale and fp16 minimum
 * (20 bytes: d, m, 16 nibble bytes, the first 16 values in the low nibbles). Bit-identical to
 * libggml's `quantize_row_q4_1_ref` / `dequantize_row_q4_1`.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { checkBlocks, minMax32 } from "./blocks.ts";

const fr = Math.fround;
const QK = 32;
const TYPE_SIZE = 20;
const MIN_MAX = new Float32Array(2);

/** Quantize `src` (a multiple of 32 values) to Q4_1 blocks in `dst` (20 bytes per block). */
export function quantizeQ4_1(src: Float32Array, dst: Uint8Array): void {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const nb = checkBlocks("quantizeQ4_1", src.length, dst.length, QK, TYPE_SIZE, true);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK, y += TYPE_SIZE) {
    minMax32(src, bits, x, MIN_MAX);
    const min = MIN_MAX[0], max = MIN_MAX[1];
    const d = fr(fr(max - min) / 15);
    const id = d !== 0 ? fr(1 / d) : 0;
    const hd = f32ToF16(d), hm = f32ToF16(min);
    dst[y] = hd;
    dst[y + 1] = hd >>> 8;
    dst[y + 2] = hm;
    dst[y + 3] = hm >>> 8;
    for (let j = 0; j < 16; j++) {
      // C: MIN(15, (int8_t)((x - min)*id + 0.5f))
      let q0 = ((fr(fr(fr(src[x + j] - min) * id) + 0.5) | 0) << 24) >> 24;
      let q1 = ((fr(fr(fr(src[x + j + 16] - min) * id) + 0.5) | 0) << 24) >> 24;
      if (q0 > 15) q0 = 15;
      if (q1 > 15) q1 = 15;
      dst[y + 4 + j] = (q0 & 0xff) | (q1 << 4);
    }
  }
}

/** Dequantize Q4_1 blocks in `src` into `dst` (a multiple of 32 values). */
export function dequantizeQ4_1(src: Uint8Array, dst: Float32Array): void {
  const nb = checkBlocks("dequantizeQ4_1", dst.length, src.length, QK, TYPE_SIZE, false);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += TYPE_SIZE, y += QK) {
    const d = F16_TO_F32[src[x] | (src[x + 1] << 8)];
    const m = F16_TO_F32[src[x + 2] | (src[x + 3] << 8)];
    for (let j = 0; j < 16; j++) {
      const b = src[x + 4 + j];
      dst[y + j] = fr((b & 0xf) * d) + m;
      dst[y + j + 16] = fr((b >> 4) * d) + m;
    }
  }
}
