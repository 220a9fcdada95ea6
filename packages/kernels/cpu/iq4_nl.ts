/**
 * IQ4_NL: blocks of 32 values, 4-bit indices into the non-linear table `KVALUES_IQ4NL` with one
 * fp16 scale (18 bytes: d, 16 nibble bytes with the first 16 values in the low nibbles).
 *
 * Quantization is what libggml's `ggml_quantize_chunk` does for this type without an importance
 * matrix: `quantize_iq4_nl`, i.e. `quantize_row_iq4_nl_impl` with weights x^2 and a search over
 * 15 trial scales (ntry = 7), not the plainer `quantize_row_iq4_nl_ref`. Dequantization is
 * `dequantize_row_iq4_nl`. Both bit-identical.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { checkBlocks } from "./blocks.ts";

const fr = Math.fround;
const QK = 32;
const TYPE_SIZE = 18;

/** The 16 levels of IQ4_NL and IQ4_XS (ggml's `kvalues_iq4nl`). */
export const KVALUES_IQ4NL: Int8Array = new Int8Array([
  -127,
  -104,
  -83,
  -65,
  -49,
  -35,
  -22,
  -10,
  1,
  13,
  25,
  38,
  53,
  69,
  89,
  113,
]);

/** ggml's `GROUP_MAX_EPS` (1e-15f). */
const GROUP_MAX_EPS = fr(1e-15);

/** MID[j] = KVALUES_IQ4NL[j - 1] + KVALUES_IQ4NL[j], the doubled midpoints (MID[0] unused). */
const MID = new Float64Array(16);
for (let j = 1; j < 16; j++) MID[j] = KVALUES_IQ4NL[j - 1] + KVALUES_IQ4NL[j];

/**
 * ggml's `best_index_int8(16, kvalues_iq4nl, x)`: the level nearest to x, a midpoint going up,
 * NaN giving 15 (libggml's binary search ends on its last level; its float32 differences are
 * exact wherever x is near a midpoint, so comparing 2x with the doubled midpoints picks the same
 * level). `x` must be a float32 value: 2x is exact in a double.
 */
export function bestIndexIq4(x: number): number {
  if (x !== x) return 15;
  const x2 = x + x;
  let i = x2 >= MID[8] ? 8 : 0;
  i = x2 >= MID[i + 4] ? i + 4 : i;
  i = x2 >= MID[i + 2] ? i + 2 : i;
  return x2 >= MID[i + 1] ? i + 1 : i;
}

const W = new Float32Array(32);

/**
 * The per-32 scale search of `quantize_row_iq4_nl_impl` (ntry = 7, weights x^2, no importance
 * matrix) over src[x..x+32): returns the float32 scale (0 for a block below GROUP_MAX_EPS).
 * Levels are not kept: both callers redo them from the final scale.
 */
export function iq4BlockScale(src: Float32Array, x: number): number {
  const V = KVALUES_IQ4NL, w = W;
  let amax = 0, max = 0;
  for (let j = 0; j < 32; j++) {
    const v = src[x + j];
    w[j] = v * v;
    const a = Math.abs(v);
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  let d = fr(-max / -127); // C: ntry > 0 ? -max/values[0]
  let id = fr(1 / d);
  let sumqx = 0, sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const v = src[x + j];
    const q = V[bestIndexIq4(fr(id * v))];
    const wq = fr(w[j] * q);
    sumqx = fr(sumqx + fr(wq * v));
    sumq2 = fr(sumq2 + fr(wq * q));
  }
  d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
  let best = fr(d * sumqx);
  for (let itry = -7; itry <= 7; itry++) {
    id = fr((itry - 127) / max);
    sumqx = 0;
    sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[x + j];
      const q = V[bestIndexIq4(fr(id * v))];
      const wq = fr(w[j] * q);
      sumqx = fr(sumqx + fr(wq * v));
      sumq2 = fr(sumq2 + fr(wq * q));
    }
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      d = fr(sumqx / sumq2);
      best = fr(d * sumqx);
    }
  }
  return d;
}

/** Quantize `src` (a multiple of 32 values) to IQ4_NL blocks in `dst` (18 bytes per block). */
export function quantizeIQ4_NL(src: Float32Array, dst: Uint8Array): void {
  const nb = checkBlocks("quantizeIQ4_NL", src.length, dst.length, QK, TYPE_SIZE, true);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK, y += TYPE_SIZE) {
    const d = iq4BlockScale(src, x);
    const h = f32ToF16(d);
    dst[y] = h;
    dst[y + 1] = h >>> 8;
    const id = d !== 0 ? fr(1 / d) : 0;
    for (let j = 0; j < 16; j++) {
      const l0 = bestIndexIq4(fr(id * src[x + j]));
      const l1 = bestIndexIq4(fr(id * src[x + j + 16]));
      dst[y + 2 + j] = l0 | (l1 << 4);
    }
  }
}

/** Dequantize IQ4_NL blocks in `src` into `dst` (a multiple of 32 values). */
export function dequantizeIQ4_NL(src: Uint8Array, dst: Float32Array): void {
  const nb = checkBlocks("dequantizeIQ4_NL", dst.length, src.length, QK, TYPE_SIZE, false);
  const V = KVALUES_IQ4NL;
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += TYPE_SIZE, y += QK) {
    const d = F16_TO_F32[src[x] | (src[x + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const b = src[x + 2 + j];
      dst[y + j] = d * V[b & 0xf];
      dst[y + j + 16] = d * V[b >> 4];
    }
  }
}
