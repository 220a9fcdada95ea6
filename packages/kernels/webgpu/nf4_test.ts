import assert from "node:assert/strict";
import { WebGpuKernels } from "./mod.ts";
import { NF4_CODEBOOK_F32 } from "./shaders/nf4.ts";
import { diffMessage, edgeBlocks, nf4Reference, TINY_CHUNKS, vectorSets } from "./test_support.ts";
import { gaussian } from "../../../tests/support/random.ts";

const bits = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);

function dequantReference(codes: Uint8Array, absmax: Float32Array, n: number, bs: number) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2 === 0 ? codes[i >> 1] >> 4 : codes[i >> 1] & 15;
    out[i] = Math.fround(NF4_CODEBOOK_F32[c] * absmax[Math.floor(i / bs)]);
  }
  return out;
}

Deno.test("webgpu nf4 matches ../shared/vectors (codes, absmax, dequantized)", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    for (const set of await vectorSets()) {
      const codes = await set.quantized("nf4");
      const absBytes = await set.quantized("nf4", "absmax");
      const absmax = new Float32Array(absBytes.buffer, absBytes.byteOffset, absBytes.length / 4);
      // the test reference agrees with the vectors too
      const ref = nf4Reference(set.input, 64);
      assert.deepEqual(ref.codes, codes);
      const got = await gpu.quantizeNf4(set.input);
      assert.deepEqual(got.codes, codes, diffMessage("nf4 codes", got.codes, codes));
      assert.deepEqual(bits(got.absmax), bits(absmax));
      const deq = await gpu.dequantizeNf4(codes, absmax, set.input.length);
      const want = await set.dequantized("nf4");
      assert.deepEqual(bits(deq), bits(want), diffMessage("nf4 dequantize", deq, want));
    }
  } finally {
    gpu.destroy();
  }
});

Deno.test("webgpu nf4: random inputs, odd lengths, partial blocks and block sizes", async () => {
  const gpu = await WebGpuKernels.create();
  const tiny = await WebGpuKernels.create(TINY_CHUNKS);
  try {
    const zeros = new Float32Array(200);
    zeros.set(gaussian(64, 3), 64); // blocks 0 and 2.. are all zero, block 1 is not
    const cases: [string, Float32Array, number][] = [
      ["normal 4096x9", gaussian(4096 * 9, 1), 64],
      ["odd length 1001", gaussian(1001, 2, 0.02), 64],
      ["zero blocks + odd tail", zeros.subarray(0, 199), 64],
      ["block 32", gaussian(3000, 4, 5), 32],
      ["block 128, odd", gaussian(5001, 5), 128],
      ["block 4096", gaussian(3 * 4096 + 17, 6), 4096],
      ["block 6", gaussian(999, 7), 6],
      ["edge blocks", edgeBlocks(256, 8), 64],
      ["tiny scale", gaussian(640, 9, 1e-30), 64],
    ];
    for (const [name, src, bs] of cases) {
      const want = nf4Reference(src, bs);
      for (const [label, k] of [["", gpu], [" chunked", tiny]] as const) {
        const got = await k.quantizeNf4(src, bs);
        assert.deepEqual(
          got.codes,
          want.codes,
          diffMessage(`${name}${label} codes`, got.codes, want.codes),
        );
        assert.deepEqual(bits(got.absmax), bits(want.absmax), `${name}${label} absmax`);
        const deq = await k.dequantizeNf4(got.codes, got.absmax, src.length, bs);
        const ref = dequantReference(want.codes, want.absmax, src.length, bs);
        assert.deepEqual(bits(deq), bits(ref), diffMessage(`${name}${label} dequantize`, deq, ref));
      }
    }
    // an odd length pads a 0.0 element: code 7 in a non-zero block, 0 in an all-zero one
    const odd = await gpu.quantizeNf4(new Float32Array([0.5, -1, 1]));
    assert.deepEqual([...odd.codes], [(12 << 4) | 0, (15 << 4) | 7]);
    const zero = await gpu.quantizeNf4(new Float32Array(3));
    assert.deepEqual([...zero.codes, ...zero.absmax], [0, 0, 0]);
  } finally {
    gpu.destroy();
    tiny.destroy();
  }
});

Deno.test("webgpu nf4 rejects bad block sizes and lengths", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    await assert.rejects(gpu.quantizeNf4(new Float32Array(8), 7), RangeError);
    await assert.rejects(gpu.quantizeNf4(new Float32Array(8), 0), RangeError);
    await assert.rejects(
      gpu.dequantizeNf4(new Uint8Array(3), new Float32Array(1), 8),
      { name: "FormatError" },
    );
    await assert.rejects(
      gpu.dequantizeNf4(new Uint8Array(4), new Float32Array(2), 8),
      { name: "FormatError" },
    );
    const empty = await gpu.quantizeNf4(new Float32Array(0));
    assert.equal(empty.codes.length + empty.absmax.length, 0);
  } finally {
    gpu.destroy();
  }
});
