import assert from "node:assert/strict";
import { ggmlDequantize, ggmlQuantize } from "../../../tests/support/libggml.ts";
import { WebGpuKernels } from "./mod.ts";
import { diffMessage, randomInputs, TINY_CHUNKS, vectorSets } from "./test_support.ts";

const TYPES = ["q4_0", "q8_0"] as const;

Deno.test("webgpu q4_0/q8_0: quantize and dequantize match ../shared/vectors", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    for (const set of await vectorSets()) {
      for (const type of TYPES) {
        const expected = await set.quantized(type);
        const got = await gpu.quantize(type, set.input);
        assert.deepEqual(got, expected, diffMessage(`${type} quantize`, got, expected));
        const deq = await gpu.dequantize(type, expected, set.input.length);
        const ref = await set.dequantized(type);
        assert.deepEqual(
          new Uint32Array(deq.buffer),
          new Uint32Array(ref.buffer, ref.byteOffset, ref.length),
          diffMessage(`${type} dequantize`, deq, ref),
        );
      }
    }
  } finally {
    gpu.destroy();
  }
});

Deno.test("webgpu q4_0/q8_0: random inputs and rounding edges match libggml", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    for (const { name, data } of randomInputs()) {
      for (const type of TYPES) {
        const expected = ggmlQuantize(type, data, 1);
        const got = await gpu.quantize(type, data);
        assert.deepEqual(got, expected, diffMessage(`${type} quantize ${name}`, got, expected));
        const deq = await gpu.dequantize(type, got, data.length);
        const ref = ggmlDequantize(type, got, data.length);
        assert.deepEqual(
          new Uint32Array(deq.buffer),
          new Uint32Array(ref.buffer),
          diffMessage(`${type} dequantize ${name}`, deq, ref),
        );
      }
    }
  } finally {
    gpu.destroy();
  }
});

Deno.test("webgpu q4_0/q8_0: tiny chunks and 2D dispatch give the same bytes", async () => {
  const gpu = await WebGpuKernels.create(TINY_CHUNKS);
  try {
    assert.equal(gpu.chunkBytes, 4096);
    // 64 * 5 + 3 blocks: six quantize chunks (the last one partial) through two buffer sets
    const data = randomInputs()[2].data.subarray(0, (64 * 5 + 3) * 32);
    for (const type of TYPES) {
      const expected = ggmlQuantize(type, data, 1);
      const got = await gpu.quantize(type, data);
      assert.deepEqual(got, expected, diffMessage(`${type} chunked quantize`, got, expected));
      const deq = await gpu.dequantize(type, got, data.length);
      const ref = ggmlDequantize(type, got, data.length);
      assert.deepEqual(new Uint32Array(deq.buffer), new Uint32Array(ref.buffer));
    }
  } finally {
    gpu.destroy();
  }
});

Deno.test("webgpu q4_0/q8_0: bad lengths are FormatErrors, empty input is empty", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    await assert.rejects(gpu.quantize("q4_0", new Float32Array(33)), { name: "FormatError" });
    await assert.rejects(gpu.dequantize("q8_0", new Uint8Array(33), 32), { name: "FormatError" });
    await assert.rejects(gpu.dequantize("q4_0", new Uint8Array(18), 31), { name: "FormatError" });
    assert.equal((await gpu.quantize("q8_0", new Float32Array(0))).length, 0);
    assert.equal((await gpu.dequantize("q4_0", new Uint8Array(0), 0)).length, 0);
  } finally {
    gpu.destroy();
  }
});
