import assert from "node:assert/strict";
import { join } from "node:path";
import { createFileSink, memorySink } from "@quantx/core";
import { fromF32, SafetensorsWriter } from "@quantx/safetensors";
import { writeGgufModel } from "./gguf_job.ts";
import { planGguf } from "./gguf_plan.ts";
import { cpuKernels } from "./kernels.ts";
import { openWeights } from "./open.ts";

/** A safetensors file of an F32 and a BF16 tensor of 3 chunks each, and a 1-D F32 tensor. */
async function model(dir: string): Promise<string> {
  const path = join(dir, "m.safetensors");
  const rows = 2100, cols = 512;
  const values = new Float32Array(rows * cols).map((_, i) => Math.sin(i * 0.37) * 0.03);
  const tensors = [
    { name: "a.weight", dtype: "F32", shape: [rows, cols] },
    { name: "b.weight", dtype: "BF16", shape: [rows, cols] },
    { name: "n.weight", dtype: "F32", shape: [cols] },
  ];
  const w = new SafetensorsWriter(await createFileSink(path), tensors);
  await w.writeHeader();
  await w.write(fromF32("F32", values));
  await w.write(fromF32("BF16", values.map((v) => -v)));
  await w.write(fromF32("F32", values.subarray(0, cols)));
  await w.finish();
  return path;
}

Deno.test("GGUF job: the same file whether the workers write into it or send results back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weights = await openWeights(await model(dir));
    try {
      const outputs: Uint8Array[] = [];
      for (const threads of [1, 2]) {
        // a file sink (workers write with 2 threads) and a memory sink (results come back)
        const file = join(dir, `t${threads}.gguf`);
        const plan = await planGguf(weights, file, { type: "q8_0" });
        const kernels = cpuKernels(threads);
        const mem = memorySink();
        try {
          const viaFile = await writeGgufModel(weights, plan, await createFileSink(file), kernels);
          const viaMemory = await writeGgufModel(weights, plan, mem, kernels);
          assert.deepEqual(viaMemory.summary(), viaFile.summary());
        } finally {
          kernels.close();
        }
        outputs.push(await Deno.readFile(file), mem.bytes());
      }
      for (const out of outputs.slice(1)) assert.deepEqual(out, outputs[0]);
    } finally {
      await weights.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Weights.locate: f32/f16/bf16 ranges in the file; outside the tensor is a RangeError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weights = await openWeights(await model(dir));
    try {
      const a = weights.locate!("a.weight", 512, 1024)!;
      const b = weights.locate!("b.weight", 512, 1024)!;
      assert.equal(a.dtype, "f32");
      assert.equal(b.dtype, "bf16");
      assert.equal(b.offset - a.offset, 2100 * 512 * 4 - 512 * 4 + 512 * 2);
      assert.equal(a.count, 1024);
      assert.throws(() => weights.locate!("a.weight", 2100 * 512 - 10, 11), RangeError);
      assert.throws(() => weights.locate!("b.weight", -1, 1), RangeError);
      assert.ok(weights.locate!("n.weight", 0, 512));
    } finally {
      await weights.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
