/**
 * Q5_K: 256-element super-blocks of 8 sub-blocks of 32, 5-bit levels with a 6-bit scale and min per
 * sub-block (176 bytes: d, dmin, 12 scale bytes, 32 high-bit bytes, 128 nibble bytes).
 * Bit-identical to libggml's `quantize_row_q5_K_ref` / `dequantize_row_q5_K`.
 * @module
 */
import { FP16_TABLE, fp32ToFp16 } from "./half.ts";
import {
  checkKQuantArgs,
  getScaleMinK4,
  makeQkx2Quants,
  nearestInt,
  QK_K,
} from "./kquant_common.ts";

const fr = Math.fround;
const TYPE_SIZE = 176;
const RDELTA = fr(0.1);

const L = new Uint8Array(QK_K);
const W = new Float32Array(32);
const SCALES = new Float32Array(8);
const MINS = new Float32Array(8);

/** Quantize `src` (a multiple of 256 values) to Q5_K blocks in `dst` (176 bytes per block). */
export function quantizeQ5_K(src: Float32Array, dst: Uint8Array): void {
  const nb = checkKQuantArgs("quantizeQ5_K", src.length, dst.length, TYPE_SIZE, true);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K, yb = i * TYPE_SIZE;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xo = xb + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) {
        const v = src[xo + l];
        sumX2 = fr(sumX2 + fr(v * v));
      }
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) W[l] = avX + Math.abs(src[xo + l]);
      makeQkx2Quants(32, 31, src, xo, W, L, 32 * j, SCALES, MINS, j, -0.5, RDELTA, 15, false);
      const scale = SCALES[j], min = MINS[j];
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const so = yb + 4;
    for (let j = 0; j < 8; j++) {
      let ls = nearestInt(fr(invScale * SCALES[j])) & 255;
      let lm = nearestInt(fr(invMin * MINS[j])) & 255;
      if (ls > 63) ls = 63;
      if (lm > 63) lm = 63;
      if (j < 4) {
        dst[so + j] = ls;
        dst[so + j + 4] = lm;
      } else {
        dst[so + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        dst[so + j - 4] |= (ls >> 4) << 6;
        dst[so + j] |= (lm >> 4) << 6;
      }
    }
    const dh = fp32ToFp16(fr(maxScale / 63));
    const mh = fp32ToFp16(fr(maxMin / 63));
    dst[yb] = dh & 255;
    dst[yb + 1] = dh >> 8;
    dst[yb + 2] = mh & 255;
    dst[yb + 3] = mh >> 8;
    const dAll = FP16_TABLE[dh], mAll = FP16_TABLE[mh];
    for (let j = 0; j < 8; j++) {
      const sm = getScaleMinK4(j, dst, so);
      const d = fr(dAll * (sm & 255));
      if (d === 0) continue; // C: `if (!d)`, which NaN passes
      const dm = fr(mAll * (sm >> 8));
      const xo = xb + 32 * j;
      for (let ii = 0; ii < 32; ii++) {
        let l = nearestInt(fr(fr(src[xo + ii] + dm) / d));
        l = l < 0 ? 0 : l > 31 ? 31 : l;
        L[32 * j + ii] = l;
      }
    }
    const qh = yb + 16;
    let ql = yb + 48;
    for (let j = 0; j < 32; j++) dst[qh + j] = 0;
    let m1 = 1, m2 = 2;
    for (let n = 0; n < QK_K; n += 64) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[n + j];
        if (l1 > 15) {
          l1 -= 16;
          dst[qh + j] |= m1;
        }
        let l2 = L[n + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          dst[qh + j] |= m2;
        }
        dst[ql + j] = l1 | (l2 << 4);
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }
}

/** Dequantize Q5_K blocks in `src` into `dst` (a multiple of 256 values). */
export function dequantizeQ5_K(src: Uint8Array, dst: Float32Array): void {
  const nb = checkKQuantArgs("dequantizeQ5_K", dst.length, src.length, TYPE_SIZE, false);
  for (let i = 0; i < nb; i++) {
    const b = i * TYPE_SIZE;
    const d = FP16_TABLE[src[b] | (src[b + 1] << 8)];
    const min = FP16_TABLE[src[b + 2] | (src[b + 3] << 8)];
    const qh = b + 16;
    let ql = b + 48, y = i * QK_K;
    let u1 = 0;
    for (let is = 0; is < 8; is += 2) {
      const s1 = getScaleMinK4(is, src, b + 4), s2 = getScaleMinK4(is + 1, src, b + 4);
      const d1 = fr(d * (s1 & 255)), m1 = fr(min * (s1 >> 8));
      const d2 = fr(d * (s2 & 255)), m2 = fr(min * (s2 >> 8));
      // the high bits of the pair are bits u1 and u1 + 1 of qh (no branch: they are random)
      for (let l = 0; l < 32; l++) {
        dst[y + l] = fr(d1 * ((src[ql + l] & 0xf) | (((src[qh + l] >> u1) & 1) << 4))) - m1;
      }
      for (let l = 0; l < 32; l++) {
        dst[y + 32 + l] = fr(d2 * ((src[ql + l] >> 4) | (((src[qh + l] >> (u1 + 1)) & 1) << 4))) -
          m2;
      }
      ql += 32;
      y += 64;
      u1 += 2;
    }
  }
}
