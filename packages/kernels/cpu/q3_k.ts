/**
 * Q3_K: 256-element super-blocks of 16 sub-blocks of 16, 3-bit signed levels with a 6-bit scale
 * per sub-block (110 bytes: 32 high-bit bytes, 64 low-bit bytes, 12 scale bytes, d).
 * Bit-identical to libggml's `quantize_row_q3_K_ref` / `dequantize_row_q3_K`.
 * @module
 */
import { FP16_TABLE, fp32ToFp16 } from "./half.ts";
import { checkKQuantArgs, makeQ3Quants, nearestInt, QK_K } from "./kquant_common.ts";

const fr = Math.fround;
const TYPE_SIZE = 110;

const L = new Uint8Array(QK_K);
const SCALES = new Float32Array(16);

/** Quantize `src` (a multiple of 256 values) to Q3_K blocks in `dst` (110 bytes per block). */
export function quantizeQ3_K(src: Float32Array, dst: Uint8Array): void {
  const nb = checkKQuantArgs("quantizeQ3_K", src.length, dst.length, TYPE_SIZE, true);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K, yb = i * TYPE_SIZE;
    let maxScale = 0, amax = 0;
    for (let j = 0; j < 16; j++) {
      makeQ3Quants(16, 4, src, xb + 16 * j, L, 16 * j, SCALES, j, true);
      const scale = SCALES[j];
      const a = Math.abs(scale);
      if (a > amax) {
        amax = a;
        maxScale = scale;
      }
    }
    const so = yb + 96;
    for (let j = 0; j < 12; j++) dst[so + j] = 0;
    let dh = 0;
    if (maxScale !== 0) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        let l = (nearestInt(fr(iscale * SCALES[j])) << 24) >> 24; // int8_t
        l = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
        if (j < 8) dst[so + j] = l & 0xf;
        else dst[so + j - 8] |= (l & 0xf) << 4;
        l >>= 4;
        dst[so + (j % 4) + 8] |= l << (2 * (j >> 2));
      }
      dh = fp32ToFp16(fr(1 / iscale));
    }
    dst[yb + 108] = dh & 255;
    dst[yb + 109] = dh >> 8;
    const dAll = FP16_TABLE[dh];
    for (let j = 0; j < 16; j++) {
      let sc = j < 8 ? dst[so + j] & 0xf : dst[so + j - 8] >> 4;
      sc = (sc | (((dst[so + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
      const d = fr(dAll * sc);
      if (d === 0) continue; // C: `if (!d)`, which NaN passes
      const xo = xb + 16 * j;
      for (let ii = 0; ii < 16; ii++) {
        let l = nearestInt(fr(src[xo + ii] / d));
        l = l < -4 ? -4 : l > 3 ? 3 : l;
        L[16 * j + ii] = l + 4;
      }
    }
    for (let j = 0; j < 32; j++) dst[yb + j] = 0;
    for (let j = 0; j < QK_K; j++) {
      if (L[j] > 3) {
        dst[yb + (j & 31)] |= 1 << (j >> 5);
        L[j] -= 4;
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      const q = yb + 32 + j / 4;
      for (let l = 0; l < 32; l++) {
        dst[q + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
      }
    }
  }
}

/** Dequantize Q3_K blocks in `src` into `dst` (a multiple of 256 values). */
export function dequantizeQ3_K(src: Uint8Array, dst: Float32Array): void {
  const nb = checkKQuantArgs("dequantizeQ3_K", dst.length, src.length, TYPE_SIZE, false);
  for (let i = 0; i < nb; i++) {
    const b = i * TYPE_SIZE;
    const dAll = FP16_TABLE[src[b + 108] | (src[b + 109] << 8)];
    const so = b + 96;
    let q = b + 32, y = i * QK_K, is = 0, mb = 0;
    for (let n = 0; n < QK_K; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 32; half += 16) {
          const j = is++;
          const lo = j < 8 ? src[so + j] & 0xf : src[so + j - 8] >> 4;
          const sc = (lo | (((src[so + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
          const dl = fr(dAll * sc);
          // minus 4 where the high bit (bit mb of hmask) is clear; no branch: the bits are random
          for (let l = half; l < half + 16; l++) {
            const v = ((src[q + l] >> shift) & 3) - 4 + (((src[b + l] >> mb) & 1) << 2);
            dst[y++] = fr(dl * v);
          }
        }
        mb++;
      }
      q += 32;
    }
  }
}
