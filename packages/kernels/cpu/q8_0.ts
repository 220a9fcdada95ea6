/**
 * Q8_0: blocks of 32 values, signed 8-bit levels with one fp16 scale (34 bytes: d, 32 int8).
 * Bit-identical to libggml's `quantize_row_q8_0_ref` / `dequantize_row_q8_0`.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { checkBlocks } from "./blocks.ts";

const fr = Math.fround;
const QK = 32;
const TYPE_SIZE = 34;

const SCR_F = new Float32Array(1);
const SCR_I = new Int32Array(SCR_F.buffer);

/** Quantize `src` (a multiple of 32 values) to Q8_0 blocks in `dst` (34 bytes per block). */
export function quantizeQ8_0(src: Float32Array, dst: Uint8Array): void {
  const nb = checkBlocks("quantizeQ8_0", src.length, dst.length, QK, TYPE_SIZE, true);
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK, y += TYPE_SIZE) {
    // the largest |x|: an integer max over the bits of |x| (their order for non-NaN floats),
    // without branches; a block with a NaN goes through C's MAX(amax, fabsf(v)) as written
    let m = 0;
    for (let j = 0; j < QK; j++) m = Math.max(m, bits[x + j] & 0x7fffffff);
    let amax: number;
    if (m > 0x7f800000) {
      amax = 0;
      for (let j = 0; j < QK; j++) {
        const a = Math.abs(src[x + j]);
        amax = amax > a ? amax : a;
      }
    } else {
      SCR_I[0] = m;
      amax = SCR_F[0];
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[y] = h;
    dst[y + 1] = h >>> 8;
    for (let j = 0; j < QK; j++) {
      // roundf(x*id): id >= 0, so round |x|*id half up (exact in a double) and give it the sign
      // of x, without a branch; NaN and infinity give 0 as C's float -> int8 conversion does
      const s = bits[x + j] >> 31;
      const r = (fr(Math.abs(src[x + j]) * id) + 0.5) | 0;
      dst[y + 2 + j] = (r ^ s) - s;
    }
  }
}

/** Dequantize Q8_0 blocks in `src` into `dst` (a multiple of 32 values). */
export function dequantizeQ8_0(src: Uint8Array, dst: Float32Array): void {
  const nb = checkBlocks("dequantizeQ8_0", dst.length, src.length, QK, TYPE_SIZE, false);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += TYPE_SIZE, y += QK) {
    const d = F16_TO_F32[src[x] | (src[x + 1] << 8)];
    for (let j = 0; j < QK; j++) dst[y + j] = ((src[x + 2 + j] << 24) >> 24) * d;
  }
}
