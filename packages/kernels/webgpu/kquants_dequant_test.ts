import assert from "node:assert/strict";
import { ggmlDequantize, ggmlQuantize } from "../../../tests/support/libggml.ts";
import { WebGpuKernels } from "./mod.ts";
import { diffMessage, randomInputs, TINY_CHUNKS, vectorSets } from "./test_support.ts";

const TYPES = ["q4_k", "q5_k", "q6_k"] as const;

const bits = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);

Deno.test("webgpu q4_k/q5_k/q6_k dequantize matches ../shared/vectors (gguf-py)", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    for (const set of await vectorSets()) {
      for (const type of TYPES) {
        const data = await set.quantized(type);
        const got = await gpu.dequantize(type, data, set.input.length);
        const ref = await set.dequantized(type);
        assert.deepEqual(bits(got), bits(ref), diffMessage(`${type} dequantize`, got, ref));
      }
    }
  } finally {
    gpu.destroy();
  }
});

Deno.test("webgpu q4_k/q5_k/q6_k dequantize random blocks like libggml", async () => {
  const gpu = await WebGpuKernels.create();
  const tiny = await WebGpuKernels.create(TINY_CHUNKS);
  try {
    for (const { name, data } of randomInputs()) {
      for (const type of TYPES) {
        const q = ggmlQuantize(type, data, 1);
        const ref = ggmlDequantize(type, q, data.length);
        const got = await gpu.dequantize(type, q, data.length);
        assert.deepEqual(bits(got), bits(ref), diffMessage(`${type} ${name}`, got, ref));
        if (data.length <= 8192) {
          const chunked = await tiny.dequantize(type, q, data.length);
          assert.deepEqual(
            bits(chunked),
            bits(ref),
            diffMessage(`${type} chunked ${name}`, got, ref),
          );
        }
      }
    }
    // arbitrary bytes: every scale / min / bit pattern decodes as libggml does (finite fp16 only)
    for (const type of TYPES) {
      const size = { q4_k: 144, q5_k: 176, q6_k: 210 }[type];
      const blocks = 64, q = new Uint8Array(blocks * size);
      let s = 12345;
      for (let i = 0; i < q.length; i++) {
        q[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
      }
      for (let b = 0; b < blocks; b++) {
        for (const o of type === "q6_k" ? [208] : [0, 2]) q[b * size + o + 1] &= 0x7b; // finite d
      }
      const ref = ggmlDequantize(type, q, blocks * 256);
      const got = await tiny.dequantize(type, q, blocks * 256);
      assert.deepEqual(bits(got), bits(ref), diffMessage(`${type} random bytes`, got, ref));
    }
  } finally {
    gpu.destroy();
    tiny.destroy();
  }
});

Deno.test("webgpu k-quant dequantize rejects bad lengths", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    await assert.rejects(gpu.dequantize("q6_k", new Uint8Array(210), 255), { name: "FormatError" });
    await assert.rejects(gpu.dequantize("q4_k", new Uint8Array(143), 256), { name: "FormatError" });
  } finally {
    gpu.destroy();
  }
});
