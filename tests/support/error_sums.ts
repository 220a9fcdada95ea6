/**
 * The error sums of `y` against `x` over `[start, end)` written the plain way (a branch per
 * value), as the reference for the kernels' branch-free loop: Σ (x − y)², Σ x², Σ x·y, Σ y²,
 * max |x − y| and the count of non-finite pairs (left out of the rest).
 */
export function plainErrorSums(
  x: Float32Array,
  y: Float32Array,
  start = 0,
  end = x.length,
): [number, number, number, number, number, number] {
  let sumSq = 0, sumSqRef = 0, dot = 0, sumSqOut = 0, maxAbs = 0, nonFinite = 0;
  for (let i = start; i < end; i++) {
    if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) {
      nonFinite++;
      continue;
    }
    const d = x[i] - y[i];
    sumSq += d * d;
    sumSqRef += x[i] * x[i];
    dot += x[i] * y[i];
    sumSqOut += y[i] * y[i];
    if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
  }
  return [sumSq, sumSqRef, dot, sumSqOut, maxAbs, nonFinite];
}
