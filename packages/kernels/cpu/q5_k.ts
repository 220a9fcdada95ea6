/**
 * Q5_K: 256-element super-blocks of 8 sub-blocks of 32, 5-bit levels with a 6-bit scale and min per
 * sub-block (176 bytes: d, dmin, 12 scale bytes, 32 high-bit bytes, 128 nibble bytes).
 * Bit-identical to libggml's `quantize_row_q5_K_ref` / `dequantize_row_q5_K`.
 * @module
 */
import { FP16_TABLE } from "./half.ts";
import { checkKQuantArgs, getScaleMinK4, QK_K, quantizeScaleMinBlock } from "./kquant_common.ts";

const fr = Math.fround;
const TYPE_SIZE = 176;

const L = new Uint8Array(QK_K);

/** Quantize `src` (a multiple of 256 values) to Q5_K blocks in `dst` (176 bytes per block). */
export function quantizeQ5_K(src: Float32Array, dst: Uint8Array): void {
  const nb = checkKQuantArgs("quantizeQ5_K", src.length, dst.length, TYPE_SIZE, true);
  for (let i = 0; i < nb; i++) {
    const yb = i * TYPE_SIZE;
    quantizeScaleMinBlock(src, i * QK_K, dst, yb, 31, -0.5, 15, L);
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
