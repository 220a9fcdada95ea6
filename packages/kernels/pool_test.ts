import assert from "node:assert/strict";
import { runPoolTask, taskReply, WorkerPool } from "./pool.ts";
import { dequantize, quantize } from "./quantize.ts";
import type { QuantType } from "./types.ts";
import { gaussian } from "../../tests/support/random.ts";
import { plainErrorSums } from "../../tests/support/error_sums.ts";

const TYPES: QuantType[] = ["f16", "bf16", "q4_0", "q8_0", "q4_k", "q6_k", "iq4_xs"];

function input(rows: number, cols: number, seed: number): Float32Array {
  const x = gaussian(rows * cols, seed, 0.02);
  x[5] = 3; // an outlier
  x.fill(0, cols, 2 * cols); // a zero row
  return x;
}

function directStats(x: Float32Array, y: Float32Array) {
  const [sumSq, sumSqRef, dot, sumSqOut, maxAbs, nonFinite] = plainErrorSums(x, y);
  return { sumSq, sumSqRef, dot, sumSqOut, maxAbs, nonFinite, count: x.length };
}

Deno.test("WorkerPool: bytes identical to quantize()/dequantize() for 1, 2 and 3 workers", async () => {
  const rows = 13, cols = 512;
  const src = input(rows, cols, 1);
  const pools = [1, 2, 3].map((n) => new WorkerPool(n, { minParallelValues: 0 }));
  try {
    for (const type of TYPES) {
      const want = quantize(type, src);
      const wantBack = dequantize(type, want, src.length);
      for (const pool of pools) {
        const got = await pool.quantize(type, src, cols);
        assert.deepEqual(got, want, `${type} with ${pool.threads} threads`);
        const back = await pool.dequantize(type, got, src.length, cols);
        assert.deepEqual(back, wantBack, `${type} dequantize with ${pool.threads} threads`);
        const back2 = await pool.dequantize(type, got, src.length);
        assert.deepEqual(back2, wantBack, `${type} block-chunked dequantize`);
      }
    }
    assert.deepEqual(pools.map((p) => p.workers), [0, 2, 3]);
  } finally {
    for (const p of pools) p.close();
  }
});

Deno.test("WorkerPool: quantizeWithStats is thread-count independent and correct", async () => {
  const rows = 20, cols = 256;
  const src = input(rows, cols, 2);
  src[cols * 3 + 7] = Infinity;
  src[cols * 4 + 1] = NaN;
  const results = [];
  for (const n of [1, 2, 3]) {
    const pool = new WorkerPool(n, { minParallelValues: 0 });
    try {
      results.push(await pool.quantizeWithStats("q4_k", src, cols));
    } finally {
      pool.close();
    }
  }
  const want = quantize("q4_k", src);
  for (const r of results) {
    assert.deepEqual(r.bytes, want);
    assert.deepEqual(r.stats, results[0].stats);
  }
  const direct = directStats(src, dequantize("q4_k", want, src.length));
  const s = results[0].stats;
  assert.equal(s.count, src.length);
  assert.equal(s.nonFinite, direct.nonFinite);
  assert.ok(s.nonFinite >= 2);
  assert.equal(s.maxAbs, direct.maxAbs);
  for (const k of ["sumSq", "sumSqRef", "dot", "sumSqOut"] as const) {
    assert.ok(
      Math.abs(s[k] - direct[k]) <= 1e-9 * Math.abs(direct[k]),
      `${k}: ${s[k]} vs ${direct[k]}`,
    );
  }
  assert.ok(s.sumSq > 0 && s.sumSq < s.sumSqRef);
});

Deno.test("WorkerPool: small inputs run inline, same bytes", async () => {
  const pool = new WorkerPool(4);
  try {
    const src = input(2, 256, 3);
    assert.deepEqual(await pool.quantize("q5_k", src, 256), quantize("q5_k", src));
    const st = await pool.quantizeWithStats("q8_0", src, 256);
    assert.deepEqual(st.bytes, quantize("q8_0", src));
    assert.equal(st.stats.count, 512);
    assert.equal(pool.workers, 0);
  } finally {
    pool.close();
  }
});

Deno.test("WorkerPool: errors inside workers reject the call", async () => {
  const pool = new WorkerPool(2, { minParallelValues: 0 });
  try {
    const src = input(4, 64, 4);
    // q8_1 is a ggml type QuantX does not quantize: the kernel in the worker throws.
    await assert.rejects(
      () => pool.quantize("q8_1" as QuantType, src, 64),
      (e: Error) => e instanceof TypeError && /not supported/.test(e.message),
    );
    await assert.rejects(
      () => pool.dequantize("q8_1" as QuantType, new Uint8Array(36 * 8), 256),
      (e: Error) => e instanceof TypeError && /not supported/.test(e.message),
    );
    assert.ok(pool.workers > 0);
    // the pool still works afterwards
    assert.deepEqual(await pool.quantize("q4_0", src, 64), quantize("q4_0", src));
    // argument errors reject too
    await assert.rejects(() => pool.quantize("q4_0", src, 48), RangeError);
    await assert.rejects(() => pool.quantize("q4_0", src, 100), RangeError);
    await assert.rejects(() => pool.dequantize("q4_0", new Uint8Array(10), 64), RangeError);
  } finally {
    pool.close();
  }
});

Deno.test("WorkerPool: close() rejects pending and later calls and terminates workers", async () => {
  const pool = new WorkerPool(2, { minParallelValues: 0 });
  const src = input(64, 1024, 5);
  const pending = pool.quantize("q6_k", src, 1024);
  await Promise.resolve();
  assert.equal(pool.workers, 2);
  pool.close();
  assert.equal(pool.workers, 0);
  await assert.rejects(pending, /closed/);
  await assert.rejects(() => pool.quantize("q6_k", src, 1024), /closed/);
  pool.close(); // twice is fine
  assert.throws(() => new WorkerPool(0), RangeError);
});

Deno.test("WorkerPool.quantizeOnOneWorker: same bytes and stats as quantizeWithStats, transfers", async () => {
  const pool = new WorkerPool(2);
  try {
    const src = new Float32Array(64 * 256).map((_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
    const want = await pool.quantizeWithStats("q4_k", src.slice(), 256);
    const owned = src.slice();
    const got = await pool.quantizeOnOneWorker("q4_k", owned, 256, true);
    assert.deepEqual(got.bytes, want.bytes);
    assert.deepEqual(got.stats, want.stats);
    assert.equal(owned.length, 0, "an exactly-spanning buffer is transferred");
    assert.deepEqual(new Float32Array(got.spare!), src, "and handed back unchanged, for reuse");
    const view = new Float32Array(src.length + 8).subarray(4, 4 + src.length);
    view.set(src);
    const copied = await pool.quantizeOnOneWorker("q4_k", view, 256);
    assert.deepEqual(copied.bytes, want.bytes);
    assert.equal(copied.stats, undefined);
    assert.equal(view.length, src.length, "a view is copied, not detached");
    assert.equal(copied.spare, undefined, "a copy is not handed back");
  } finally {
    pool.close();
  }
  const inline = new WorkerPool(1);
  const owned = new Float32Array(256).fill(0.5);
  const got = await inline.quantizeOnOneWorker("q8_0", owned, 256, true);
  assert.equal(got.spare, owned.buffer, "inline, the buffer itself is handed back");
  inline.close();
});

Deno.test("WorkerPool: two tasks per worker, replies in order, a failing task fails alone", async () => {
  const pool = new WorkerPool(2);
  assert.equal(pool.capacity, 4);
  try {
    const chunks = Array.from({ length: 9 }, (_, k) => input(8, 256, 10 + k));
    const want = chunks.map((c) => quantize("q4_0", c));
    const jobs = chunks.map((c, k) =>
      k === 4
        ? pool.quantizeOnOneWorker("q8_1" as QuantType, c.slice(), 256)
        : pool.quantizeOnOneWorker("q4_0", c.slice(), 256, true)
    );
    await Promise.resolve();
    assert.equal(pool.workers, 2);
    const settled = await Promise.allSettled(jobs);
    settled.forEach((r, k) => {
      if (k === 4) assert.equal(r.status, "rejected");
      else {
        assert.equal(r.status, "fulfilled");
        assert.deepEqual((r as PromiseFulfilledResult<{ bytes: Uint8Array }>).value.bytes, want[k]);
      }
    });
    // close() rejects the running and the held tasks alike
    const more = chunks.map((c) => pool.quantizeOnOneWorker("q6_k", c.slice(), 256));
    await Promise.resolve();
    pool.close();
    for (const r of await Promise.allSettled(more)) assert.equal(r.status, "rejected");
  } finally {
    pool.close();
  }
});

Deno.test("runPoolTask into a given buffer; taskReply; runOnWorker needs workers", async () => {
  const src = input(4, 256, 22);
  const want = quantize("q4_0", src);
  const into = new Uint8Array(want.length + 10).fill(7);
  const task = { id: 3, op: "stats" as const, type: "q4_0", rowLength: 256, count: src.length };
  const r = runPoolTask({ ...task, data: src.slice().buffer }, into);
  assert.equal(r.out.byteLength, 0);
  assert.deepEqual(into.subarray(0, want.length), want);
  assert.deepEqual([...into.subarray(want.length)], new Array(10).fill(7));
  assert.equal(r.rowStats!.byteLength, 4 * 6 * 8);
  assert.throws(() => runPoolTask(task), /no data/);
  const failed = taskReply(task);
  assert.deepEqual(failed, {
    reply: { id: 3, ok: false, name: "TypeError", message: "runPoolTask: the task has no data" },
    transfer: [],
  });
  const ok = taskReply({ ...task, data: src.slice().buffer });
  assert.equal(ok.reply.ok, true);
  assert.equal(ok.transfer.length, 3, "result, row sums and the input buffer");
  const one = new WorkerPool(1);
  await assert.rejects(() => one.runOnWorker("q4_0", 256, 256, false, {}), /needs worker threads/);
  one.close();
});

Deno.test("WorkerPool: a worker answering the wrong task fails its tasks instead of hanging", async () => {
  const pool = new WorkerPool(2, {
    workerUrl: new URL("./testdata/wrong_id_worker.ts", import.meta.url),
  });
  try {
    const src = input(4, 256, 23);
    await assert.rejects(
      () => pool.quantizeOnOneWorker("q4_0", src, 256),
      /WorkerPool: worker replied to task \d+, expected \d+/,
    );
  } finally {
    pool.close();
  }
});
