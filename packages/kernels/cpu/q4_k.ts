/**
 * Q4_K: 256-element super-blocks of 8 sub-blocks of 32, 4-bit levels with a 6-bit scale and min per
 * sub-block (144 bytes: d, dmin, 12 scale bytes, 128 nibble bytes). Bit-identical to libggml's
 * `quantize_row_q4_K_ref` / `dequantize_row_q4_K`.
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
import { wasmQuantizeQ4_K } from "./kquants_wasm.ts";

const fr = Math.fround;
const TYPE_SIZE = 144;
const RDELTA = fr(0.1);

const L = new Uint8Array(QK_K);
const W = new Float32Array(32);
const SCALES = new Float32Array(8);
const MINS = new Float32Array(8);

/**
 * Quantize `src` (a multiple of 256 values) to Q4_K blocks in `dst` (144 bytes per block), with
 * the WebAssembly fast path when available (same bytes as {@link quantizeQ4_KRef}).
 */
export function quantizeQ4_K(src: Float32Array, dst: Uint8Array): void {
  const nb = checkKQuantArgs("quantizeQ4_K", src.length, dst.length, TYPE_SIZE, true);
  if (!wasmQuantizeQ4_K(src, dst, nb)) quantizeBlocks(src, dst, nb);
}

/** The JS reference of {@link quantizeQ4_K}, used where WebAssembly (with SIMD128) is unavailable. */
export function quantizeQ4_KRef(src: Float32Array, dst: Uint8Array): void {
  quantizeBlocks(
    src,
    dst,
    checkKQuantArgs("quantizeQ4_K", src.length, dst.length, TYPE_SIZE, true),
  );
}

function quantizeBlocks(src: Float32Array, dst: Uint8Array, nb: number): void {
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
      makeQkx2Quants(32, 15, src, xo, W, L, 32 * j, SCALES, MINS, j, -1, RDELTA, 20, false);
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
        l = l < 0 ? 0 : l > 15 ? 15 : l;
        L[32 * j + ii] = l;
      }
    }
    let q = yb + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) dst[q + l] = L[j + l] | (L[j + l + 32] << 4);
      q += 32;
    }
  }
}

/** Dequantize Q4_K blocks in `src` into `dst` (a multiple of 256 values). */
export function dequantizeQ4_K(src: Uint8Array, dst: Float32Array): void {
  const nb = checkKQuantArgs("dequantizeQ4_K", dst.length, src.length, TYPE_SIZE, false);
  for (let i = 0; i < nb; i++) {
    const b = i * TYPE_SIZE;
    const d = FP16_TABLE[src[b] | (src[b + 1] << 8)];
    const min = FP16_TABLE[src[b + 2] | (src[b + 3] << 8)];
    let q = b + 16, y = i * QK_K;
    for (let is = 0; is < 8; is += 2) {
      const s1 = getScaleMinK4(is, src, b + 4), s2 = getScaleMinK4(is + 1, src, b + 4);
      const d1 = fr(d * (s1 & 255)), m1 = fr(min * (s1 >> 8));
      const d2 = fr(d * (s2 & 255)), m2 = fr(min * (s2 >> 8));
      for (let l = 0; l < 32; l++) dst[y + l] = fr(d1 * (src[q + l] & 0xf)) - m1;
      for (let l = 0; l < 32; l++) dst[y + 32 + l] = fr(d2 * (src[q + l] >> 4)) - m2;
      q += 32;
      y += 64;
    }
  }
}
