import assert from "node:assert/strict";
import { ERROR_SUM_FIELDS, errorSumsInto } from "./error_sums.ts";
import { plainErrorSums as reference } from "../../tests/support/error_sums.ts";

Deno.test("errorSumsInto: equal to the plain loop, non-finite pairs counted and left out", () => {
  const n = 4096;
  const x = new Float32Array(n), y = new Float32Array(n);
  let s = 7;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = ((s >>> 8) / 2 ** 24 - 0.5) * 0.1;
    y[i] = x[i] + ((s & 255) - 128) * 1e-5;
  }
  const odd = [NaN, Infinity, -Infinity, -0, 1e-45, 3.4e38, -3.4e38];
  odd.forEach((v, k) => {
    x[100 + k] = v; // non-finite reference
    y[200 + k] = v; // non-finite output
    x[300 + k] = v; // both the same
    y[300 + k] = v;
  });
  const out = new Float64Array(ERROR_SUM_FIELDS + 3).fill(-1);
  for (const [start, end] of [[0, n], [0, 0], [150, 2500], [1, 2]]) {
    errorSumsInto(x, y, start, end, out, 3);
    assert.deepEqual([...out.subarray(3)], reference(x, y, start, end), `[${start}, ${end})`);
    assert.deepEqual([...out.subarray(0, 3)], [-1, -1, -1], "writes only at `at`");
  }
  errorSumsInto(x, y, 0, n, out, 0);
  assert.equal(out[5], 9, "NaN and ±Infinity in x, in y, and in both: 3 + 3 + 3 pairs");
  assert.ok(out[4] > 0 && Number.isFinite(out[4]));
});
