import assert from "node:assert/strict";
import { join } from "node:path";
import { dequantize, quantize, WorkerPool } from "@quantx/kernels";
import type { FileTask } from "./io_worker.ts";

const IO_WORKER = new URL("./io_worker.ts", import.meta.url);

Deno.test("io worker: values read from a file, results sent back or written into one", async () => {
  const dir = await Deno.makeTempDir();
  const pool = new WorkerPool(2, { workerUrl: IO_WORKER });
  try {
    const rows = 12, cols = 256, n = rows * cols;
    const values = new Float32Array(n).map((_, i) => Math.sin(i * 0.61) * 0.05);
    values[7] = 2; // an outlier
    const f16 = quantize("f16", values), bf16 = quantize("bf16", values);
    // 16 bytes of something else, then f32, f16 and bf16 copies of the values
    const path = join(dir, "values.bin");
    await Deno.writeFile(
      path,
      new Uint8Array([
        ...new Uint8Array(16).fill(9),
        ...new Uint8Array(values.buffer),
        ...f16,
        ...bf16,
      ]),
    );
    const sources = [
      { dtype: "f32" as const, offset: 16, widened: values },
      { dtype: "f16" as const, offset: 16 + 4 * n, widened: dequantize("f16", f16, n) },
      { dtype: "bf16" as const, offset: 16 + 6 * n, widened: dequantize("bf16", bf16, n) },
    ];
    for (const s of sources) {
      const want = await pool.quantizeOnOneWorker("q4_0", s.widened.slice(), cols, true);
      const task: FileTask = { src: { path, offset: s.offset, count: n, dtype: s.dtype } };
      const got = await pool.runOnWorker("q4_0", n, cols, true, task);
      assert.deepEqual(got.bytes, want.bytes, s.dtype);
      assert.deepEqual(got.stats, want.stats);
      // written into an existing file at an offset instead of sent back
      const out = join(dir, `out-${s.dtype}.bin`);
      await Deno.writeFile(out, new Uint8Array(5).fill(1));
      const written = await pool.runOnWorker("q4_0", n, cols, true, {
        ...task,
        target: { path: out, offset: 3 },
      });
      assert.equal(written.bytes.length, 0);
      assert.deepEqual(written.stats, want.stats);
      const file = await Deno.readFile(out);
      assert.deepEqual([...file.subarray(0, 3)], [1, 1, 1]);
      assert.deepEqual(file.subarray(3), want.bytes);
    }
    // plain tasks still work on this worker
    assert.deepEqual(await pool.quantize("q8_0", values, cols), quantize("q8_0", values));
    // a full disk is named by the output's name, not the partial file's path
    const full: FileTask = {
      src: { path, offset: 16, count: n, dtype: "f32" },
      target: { path: "/dev/full", offset: 0, name: "out.gguf" },
    };
    await assert.rejects(
      () => pool.runOnWorker("q4_0", n, cols, false, full),
      /cannot write out\.gguf: no space left on device/,
    );
    // a range past the end of the file fails, naming the file and offset
    const past: FileTask = { src: { path, offset: 16, count: 4 * n, dtype: "f32" } };
    await assert.rejects(
      () => pool.runOnWorker("q4_0", 4 * n, cols, false, past),
      /values\.bin: at byte \d+: file ended early/,
    );
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});
