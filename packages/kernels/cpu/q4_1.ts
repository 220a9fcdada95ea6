/**
 * Q4_1: blocks of 32 values, 4-bit levels above a minimum with an fp16 scale and fp16 minimum
 * (20 bytes: d, m, 16 nibble bytes, the first 16 values in the low nibbles). Bit-identical to
 * libggml's `quantize_row_q4_1_ref` / `dequantize_row_q4_1`.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { checkBlocks } from "./blocks.ts";

const fr = Math.fround;
const QK = 32;
const TYPE_SIZE = 20;
const FLT_MAX = 3.4028234663852886e38;

const SCR_F = new Float32Array(1);
const SCR_I = new Int32Array(SCR_F.buffer);

/** C's `if (v < min) min = v` loop from FLT_MAX (NaN never taken; the first of -0 and +0). */
function minAsC(src: Float32Array, x: number): number {
  let min = FLT_MAX;
  for (let j = 0; j < QK; j++) if (src[x + j] < min) min = src[x + j];
  return min;
}

/** C's `if (v > max) max = v` loop from -FLT_MAX. */
function maxAsC(src: Float32Array, x: number): number {
  let max = -FLT_MAX;
  for (let j = 0; j < QK; j++) if (src[x + j] > max) max = src[x + j];
  return max;
}

/** Quantize `src` (a multiple of 32 values) to Q4_1 blocks in `dst` (20 bytes per block). */
export function quantizeQ4_1(src: Float32Array, dst: Uint8Array): void {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const nb = checkBlocks("quantizeQ4_1", src.length, dst.length, QK, TYPE_SIZE, true);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK, y += TYPE_SIZE) {
    // min and max as integer min / max over the float bits mapped to an order-preserving int
    // (negative floats get their magnitude bits flipped), without branches; blocks with a NaN
    // or a zero extreme (C keeps the first of -0 and +0) go through C's loop
    let kmin = 0x7fffffff, kmax = -0x80000000;
    for (let j = 0; j < QK; j++) {
      const b = bits[x + j];
      const k = b ^ ((b >> 31) & 0x7fffffff);
      kmin = Math.min(kmin, k);
      kmax = Math.max(kmax, k);
    }
    let min: number, max: number;
    if (
      kmax > 0x7f800000 || kmin < -0x7f800001 || kmin === 0 || kmin === -1 || kmax === 0 ||
      kmax === -1
    ) {
      min = minAsC(src, x);
      max = maxAsC(src, x);
    } else {
      SCR_I[0] = kmin ^ ((kmin >> 31) & 0x7fffffff);
      min = SCR_F[0];
      SCR_I[0] = kmax ^ ((kmax >> 31) & 0x7fffffff);
      max = SCR_F[0];
    }
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
