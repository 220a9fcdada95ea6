/**
 * Q6_K: 256-element super-blocks of 16 sub-blocks of 16, 6-bit signed levels with an 8-bit scale
 * per sub-block (210 bytes: 128 low-nibble bytes, 64 high-bit bytes, 16 scales, d last).
 * Bit-identical to libggml's `quantize_row_q6_K_ref` / `dequantize_row_q6_K`.
 * @module
 */
import { FP16_TABLE, fp32ToFp16 } from "./half.ts";
import { checkKQuantArgs, GROUP_MAX_EPS, makeQxQuants, nearestInt, QK_K } from "./kquant_common.ts";
import { wasmQuantizeQ6_K } from "./kquants_wasm.ts";

const fr = Math.fround;
const TYPE_SIZE = 210;

const L = new Uint8Array(QK_K);
const SCALES = new Float32Array(16);

/**
 * Quantize `src` (a multiple of 256 values) to Q6_K blocks in `dst` (210 bytes per block), with
 * the WebAssembly fast path when available (same bytes as {@link quantizeQ6_KRef}).
 */
export function quantizeQ6_K(src: Float32Array, dst: Uint8Array): void {
  const nb = checkKQuantArgs("quantizeQ6_K", src.length, dst.length, TYPE_SIZE, true);
  if (!wasmQuantizeQ6_K(src, dst, nb)) quantizeBlocks(src, dst, nb);
}

/** The JS reference of {@link quantizeQ6_K}, used where WebAssembly (with SIMD128) is unavailable. */
export function quantizeQ6_KRef(src: Float32Array, dst: Uint8Array): void {
  quantizeBlocks(
    src,
    dst,
    checkKQuantArgs("quantizeQ6_K", src.length, dst.length, TYPE_SIZE, true),
  );
}

function quantizeBlocks(src: Float32Array, dst: Uint8Array, nb: number): void {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K, yb = i * TYPE_SIZE;
    let maxScale = 0, maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      makeQxQuants(16, 32, src, bits, xb + 16 * ib, L, 16 * ib, SCALES, ib);
      const scale = SCALES[ib];
      const a = Math.abs(scale);
      if (a > maxAbsScale) {
        maxAbsScale = a;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      for (let j = 0; j < TYPE_SIZE; j++) dst[yb + j] = 0;
      continue;
    }
    const iscale = fr(-128 / maxScale);
    const dh = fp32ToFp16(fr(1 / iscale));
    dst[yb + 208] = dh & 255;
    dst[yb + 209] = dh >> 8;
    const so = yb + 192;
    for (let ib = 0; ib < 16; ib++) {
      const l = nearestInt(fr(iscale * SCALES[ib]));
      dst[so + ib] = l < 127 ? l : 127;
    }
    const dAll = FP16_TABLE[dh];
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * ((dst[so + j] << 24) >> 24));
      if (d === 0) continue; // C: `if (!d)`, which NaN passes
      const xo = xb + 16 * j;
      for (let ii = 0; ii < 16; ii++) {
        let l = nearestInt(fr(src[xo + ii] / d));
        l = l < -32 ? -32 : l > 31 ? 31 : l;
        L[16 * j + ii] = l + 32;
      }
    }
    let ql = yb, qh = yb + 128;
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        const a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
        dst[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        dst[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
        dst[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
  }
}

/** Dequantize Q6_K blocks in `src` into `dst` (a multiple of 256 values). */
export function dequantizeQ6_K(src: Uint8Array, dst: Float32Array): void {
  const nb = checkKQuantArgs("dequantizeQ6_K", dst.length, src.length, TYPE_SIZE, false);
  for (let i = 0; i < nb; i++) {
    const b = i * TYPE_SIZE;
    const d = FP16_TABLE[src[b + 208] | (src[b + 209] << 8)];
    let ql = b, qh = b + 128, sc = b + 192, y = i * QK_K;
    for (let n = 0; n < QK_K; n += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const q1 = ((src[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        dst[y + l] = fr(d * ((src[sc + is] << 24) >> 24)) * q1;
        dst[y + l + 32] = fr(d * ((src[sc + is + 2] << 24) >> 24)) * q2;
        dst[y + l + 64] = fr(d * ((src[sc + is + 4] << 24) >> 24)) * q3;
        dst[y + l + 96] = fr(d * ((src[sc + is + 6] << 24) >> 24)) * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}
