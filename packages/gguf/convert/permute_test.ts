import assert from "node:assert/strict";
import { headRows, permuteRows } from "./permute.ts";

/** convert_hf_to_gguf's LlamaModel.permute: reshape(n_head, 2, d/2, ...).swapaxes(1, 2). */
function reference(w: Float32Array, rows: number, ne0: number, nHead: number): Float32Array {
  const d = rows / nHead;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let a = 0; a < 2; a++) {
      for (let b = 0; b < d / 2; b++) {
        // source index [h, a, b] -> destination [h, b, a]
        const src = h * d + a * (d / 2) + b;
        const dst = h * d + b * 2 + a;
        out.set(w.subarray(src * ne0, (src + 1) * ne0), dst * ne0);
      }
    }
  }
  return out;
}

Deno.test("permuteRows: one head interleaves its two halves", () => {
  assert.deepEqual([...permuteRows(new Float32Array([0, 1, 2, 3, 4, 5]), 0, 6, 1, 1, 6)], [
    0,
    3,
    1,
    4,
    2,
    5,
  ]);
});

Deno.test("permuteRows: chunks of whole heads equal the whole-tensor permutation", () => {
  const rows = 32;
  const ne0 = 5;
  const nHead = 4;
  const w = new Float32Array(rows * ne0).map((_, i) => i * 0.5 - 7);
  const whole = permuteRows(w, 0, rows, ne0, nHead, rows);
  assert.deepEqual(whole, reference(w, rows, ne0, nHead));
  const hd = headRows(rows, nHead);
  const parts: number[] = [];
  for (let r = 0; r < rows; r += 2 * hd) {
    parts.push(...permuteRows(w.slice(r * ne0, (r + 2 * hd) * ne0), r, 2 * hd, ne0, nHead, rows));
  }
  assert.deepEqual(new Float32Array(parts), whole);
});

Deno.test("permuteRows: refuses chunks that cut a head or do not fit", () => {
  const w = new Float32Array(16);
  assert.throws(() => permuteRows(w, 2, 4, 1, 4, 16), /not at a head boundary/);
  assert.throws(() => permuteRows(w, 0, 6, 1, 4, 16), /not whole heads/);
  assert.throws(() => permuteRows(w, 0, 16, 2, 4, 16), /expected 16 rows of 2 values/);
  assert.throws(() => headRows(12, 4), /even number of rows/);
  assert.throws(() => headRows(10, 4), /even number of rows/);
});
