/**
 * Q2_K: 256-element super-blocks of 16 sub-blocks of 16, 2-bit levels with a 4-bit scale and min
 * per sub-block (84 bytes: 16 scale bytes, 64 level bytes, d, dmin). Bit-identical to libggml's
 * `quantize_row_q2_K_ref` / `dequantize_row_q2_K`.
 * @module
 */
import { FP16_TABLE, fp32ToFp16 } from "./half.ts";
import { checkKQuantArgs, makeQkx2Quants, nearestInt, QK_K } from "./kquant_common.ts";

const fr = Math.fround;
const TYPE_SIZE = 84;
const RDELTA = fr(0.1);

const L = new Uint8Array(QK_K);
const W = new Float32Array(16);
const SCALES = new Float32Array(16);
const MINS = new Float32Array(16);

/** Quantize `src` (a multiple of 256 values) to Q2_K blocks in `dst` (84 bytes per block). */
export function quantizeQ2_K(src: Float32Array, dst: Uint8Array): void {
  const nb = checkKQuantArgs("quantizeQ2_K", src.length, dst.length, TYPE_SIZE, true);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K, yb = i * TYPE_SIZE;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 16; j++) {
      const xo = xb + 16 * j;
      for (let l = 0; l < 16; l++) W[l] = Math.abs(src[xo + l]);
      makeQkx2Quants(16, 3, src, xo, W, L, 16 * j, SCALES, MINS, j, -0.5, RDELTA, 15, true);
      const scale = SCALES[j], min = MINS[j];
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    const dh = maxScale > 0 ? fp32ToFp16(fr(maxScale / 15)) : 0;
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) dst[yb + j] = nearestInt(fr(iscale * SCALES[j])) & 255;
    } else {
      for (let j = 0; j < 16; j++) dst[yb + j] = 0;
    }
    let mh = 0;
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) dst[yb + j] |= (nearestInt(fr(iscale * MINS[j])) << 4) & 255;
      mh = fp32ToFp16(fr(maxMin / 15));
    }
    dst[yb + 80] = dh & 255;
    dst[yb + 81] = dh >> 8;
    dst[yb + 82] = mh & 255;
    dst[yb + 83] = mh >> 8;
    const dAll = FP16_TABLE[dh], mAll = FP16_TABLE[mh];
    for (let j = 0; j < 16; j++) {
      const sc = dst[yb + j];
      const d = fr(dAll * (sc & 0xf));
      if (d === 0) continue; // C: `if (!d)`, which NaN passes
      const dm = fr(mAll * (sc >> 4));
      const xo = xb + 16 * j;
      for (let ii = 0; ii < 16; ii++) {
        let l = nearestInt(fr(fr(src[xo + ii] + dm) / d));
        l = l < 0 ? 0 : l > 3 ? 3 : l;
        L[16 * j + ii] = l;
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      const q = yb + 16 + j / 4;
      for (let l = 0; l < 32; l++) {
        dst[q + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
      }
    }
  }
}

/** Dequantize Q2_K blocks in `src` into `dst` (a multiple of 256 values). */
export function dequantizeQ2_K(src: Uint8Array, dst: Float32Array): void {
  const nb = checkKQuantArgs("dequantizeQ2_K", dst.length, src.length, TYPE_SIZE, false);
  for (let i = 0; i < nb; i++) {
    const b = i * TYPE_SIZE;
    const d = FP16_TABLE[src[b + 80] | (src[b + 81] << 8)];
    const min = FP16_TABLE[src[b + 82] | (src[b + 83] << 8)];
    let q = b + 16, y = i * QK_K, is = 0;
    for (let n = 0; n < QK_K; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        let sc = src[b + is++];
        let dl = fr(d * (sc & 0xf)), ml = fr(min * (sc >> 4));
        for (let l = 0; l < 16; l++) dst[y++] = fr(dl * ((src[q + l] >> shift) & 3)) - ml;
        sc = src[b + is++];
        dl = fr(d * (sc & 0xf));
        ml = fr(min * (sc >> 4));
        for (let l = 0; l < 16; l++) dst[y++] = fr(dl * ((src[q + l + 16] >> shift) & 3)) - ml;
      }
      q += 32;
    }
  }
}
