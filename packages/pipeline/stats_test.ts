import assert from "node:assert/strict";
import { ErrorStats } from "./stats.ts";
import { shortestF32 } from "./adapters/gguf.ts";

Deno.test("ErrorStats: add, merge and fromSums agree", () => {
  const ref = new Float32Array([1, -2, 0.5, 3, NaN]);
  const out = new Float32Array([1.5, -2, 0.25, 2, 1]);
  const whole = new ErrorStats();
  whole.add(ref, out);
  const a = new ErrorStats(), b = new ErrorStats();
  a.add(ref.subarray(0, 2), out.subarray(0, 2));
  b.add(ref.subarray(2), out.subarray(2));
  a.merge(b);
  assert.deepEqual(a.summary(), whole.summary());
  const s = whole.summary();
  assert.equal(s.count, 5);
  assert.equal(s.nonFinite, 1);
  assert.equal(s.maxAbsError, 1);
  assert.ok(Math.abs(s.rmse - Math.sqrt((0.25 + 0 + 0.0625 + 1) / 5)) < 1e-15);
  const sums = ErrorStats.fromSums({
    sumSq: 0.25 + 0.0625 + 1,
    sumSqRef: 1 + 4 + 0.25 + 9,
    dot: 1.5 + 4 + 0.125 + 6,
    sumSqOut: 2.25 + 4 + 0.0625 + 4,
    maxAbs: 1,
    nonFinite: 1,
    count: 5,
  });
  assert.deepEqual(sums.summary(), s);
  const exact = new ErrorStats();
  exact.add(new Float32Array([1, 2]), new Float32Array([1, 2]));
  assert.equal(exact.summary().snrDb, Infinity);
  assert.equal(exact.summary().cosine, 1);
});

Deno.test("shortestF32 prints float32 metadata as written", () => {
  assert.equal(shortestF32(Math.fround(1e-5)), 1e-5);
  assert.equal(shortestF32(Math.fround(0.1)), 0.1);
  assert.equal(shortestF32(10000), 10000);
  assert.equal(shortestF32(Math.fround(1 / 3)), 0.33333334);
  assert.ok(Number.isNaN(shortestF32(NaN)));
});
