import assert from "node:assert/strict";
import { ggmlDequantize, ggmlQuantize } from "../../../tests/support/libggml.ts";
import { WebGpuKernels } from "./mod.ts";
import { NF4_CODEBOOK_F32 } from "./shaders/nf4.ts";
import { nf4Reference, TINY_CHUNKS, vectorSets } from "./test_support.ts";
import { gaussian } from "../../../tests/support/random.ts";

/** Checks `y` against `W x` in float64 within float32 summation tolerance. */
function checkGemv(
  name: string,
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float32Array,
  y: Float32Array,
) {
  assert.equal(y.length, rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0, mag = 0;
    for (let c = 0; c < cols; c++) {
      const p = w[r * cols + c] * x[c];
      sum += p;
      mag += Math.abs(p);
    }
    const tol = 1e-5 * mag + 1e-30;
    if (!(Math.abs(y[r] - sum) <= tol)) {
      assert.fail(
        `${name}: row ${r}: gpu ${y[r]}, cpu ${sum}, |diff| ${Math.abs(y[r] - sum)} > ${tol}`,
      );
    }
  }
}

function nf4Dequant(codes: Uint8Array, absmax: Float32Array, n: number, bs: number) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2 === 0 ? codes[i >> 1] >> 4 : codes[i >> 1] & 15;
    out[i] = Math.fround(NF4_CODEBOOK_F32[c] * absmax[Math.floor(i / bs)]);
  }
  return out;
}

Deno.test("webgpu gemv q4_0/q8_0 agrees with the CPU within float32 tolerance", async () => {
  const gpu = await WebGpuKernels.create();
  const tiny = await WebGpuKernels.create(TINY_CHUNKS);
  try {
    const [set] = await vectorSets();
    const x = gaussian(set.cols, 21);
    for (const type of ["q4_0", "q8_0"] as const) {
      const q = await set.quantized(type);
      const w = ggmlDequantize(type, q, set.input.length);
      checkGemv(
        `${type} vectors`,
        w,
        set.rows,
        set.cols,
        x,
        await gpu.gemv(type, q, set.rows, set.cols, x),
      );
      for (const [rows, cols, seed] of [[300, 96, 1], [5, 32, 2], [129, 1024, 3]]) {
        const wq = ggmlQuantize(type, gaussian(rows * cols, seed, 0.05), rows);
        const wd = ggmlDequantize(type, wq, rows * cols);
        const xv = gaussian(cols, seed + 100);
        checkGemv(
          `${type} ${rows}x${cols}`,
          wd,
          rows,
          cols,
          xv,
          await gpu.gemv(type, wq, rows, cols, xv),
        );
        checkGemv(
          `${type} ${rows}x${cols} chunked`,
          wd,
          rows,
          cols,
          xv,
          await tiny.gemv(type, wq, rows, cols, xv),
        );
      }
    }
  } finally {
    gpu.destroy();
    tiny.destroy();
  }
});

Deno.test("webgpu gemv nf4 (aligned and unaligned rows, block sizes)", async () => {
  const gpu = await WebGpuKernels.create();
  const tiny = await WebGpuKernels.create(TINY_CHUNKS);
  try {
    for (
      const [rows, cols, bs, seed] of [
        [64, 512, 64, 1],
        [33, 1000, 64, 2],
        [7, 33, 64, 3],
        [50, 96, 32, 4],
        [9, 200, 128, 5],
        [40, 24, 6, 6],
      ]
    ) {
      const src = gaussian(rows * cols, seed, 0.02);
      const { codes, absmax } = nf4Reference(src, bs);
      const w = nf4Dequant(codes, absmax, rows * cols, bs);
      const x = gaussian(cols, seed + 50);
      const weight = { codes, absmax, blockSize: bs };
      checkGemv(
        `nf4 ${rows}x${cols}/${bs}`,
        w,
        rows,
        cols,
        x,
        await gpu.gemv("nf4", weight, rows, cols, x),
      );
      checkGemv(
        `nf4 ${rows}x${cols}/${bs} chunked`,
        w,
        rows,
        cols,
        x,
        await tiny.gemv("nf4", weight, rows, cols, x),
      );
    }
  } finally {
    gpu.destroy();
    tiny.destroy();
  }
});

Deno.test("webgpu gemv rejects mismatched shapes", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    const q = new Uint8Array(2 * 18);
    await assert.rejects(gpu.gemv("q4_0", q, 2, 32, new Float32Array(31)), RangeError);
    await assert.rejects(gpu.gemv("q4_0", q, 3, 32, new Float32Array(32)), { name: "FormatError" });
    await assert.rejects(gpu.gemv("q8_0", q, 1, 48, new Float32Array(48)), { name: "FormatError" });
    await assert.rejects(
      gpu.gemv(
        "nf4",
        { codes: new Uint8Array(3), absmax: new Float32Array(1) },
        2,
        4,
        new Float32Array(4),
      ),
      { name: "FormatError" },
    );
    assert.deepEqual(
      await gpu.gemv("q4_0", new Uint8Array(0), 0, 32, new Float32Array(32)),
      new Float32Array(0),
    );
  } finally {
    gpu.destroy();
  }
});
