/**
 * WebGPU kernel benchmark: GB/s of quantize (q4_0, q8_0, nf4), dequantize (q4_0, q8_0, q4_k,
 * q5_k, q6_k, nf4) and the fused GEMV (q4_0, q8_0, nf4), on the default adapter, named in the
 * output. Two rates per kernel: end to end (host -> GPU -> host, what a caller sees) and kernel
 * only (compute-pass time from timestamp queries, when the adapter has `timestamp-query`),
 * the latter also as a share of the device's memory bandwidth when it is known (a small table of
 * GPUs, or `--bandwidth GBps`). Bytes counted = bytes read + bytes written by the kernel. Every
 * result is also checked against libggml / the reference (a correctness smoke on llvmpipe).
 *
 *   deno run -A bench/webgpu.ts [--mib 16] [--iters 5] [--bandwidth 3350] [--json]
 */
import { parseArgs } from "node:util";
import { ggmlDequantize, ggmlQuantize } from "../tests/support/libggml.ts";
import { WebGpuKernels } from "../packages/kernels/webgpu/mod.ts";
import { NF4_CODEBOOK_F32 } from "../packages/kernels/webgpu/shaders/nf4.ts";
import { nf4Reference } from "../packages/kernels/webgpu/test_support.ts";
import { gaussian } from "../tests/support/random.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mib: { type: "string" },
    iters: { type: "string", default: "5" },
    bandwidth: { type: "string" },
    json: { type: "boolean", default: false },
  },
});

/** Peak memory bandwidth (GB/s) of some GPUs, matched against the adapter name. */
const KNOWN_BANDWIDTH: [RegExp, number][] = [
  [/H200/i, 4800],
  [/H100.*PCIe/i, 2000],
  [/H100/i, 3350],
  [/A100.*80/i, 2039],
  [/A100/i, 1555],
  [/L40S?/i, 864],
  [/RTX 4090/i, 1008],
  [/RTX 3090/i, 936],
  [/A10\b/i, 600],
  [/T4\b/i, 320],
  [/Apple M1$/i, 68],
  [/Apple M2$/i, 100],
  [/Apple M3$/i, 100],
];

const gpu = await WebGpuKernels.create({ timestamps: true });
const info = gpu.adapterInfo;
const bandwidth = values.bandwidth
  ? Number(values.bandwidth)
  : KNOWN_BANDWIDTH.find(([re]) => re.test(info.name))?.[1];
// llvmpipe is a CPU rasterizer on a shared machine: keep the smoke small there
const mib = Number(values.mib ?? (info.isFallbackAdapter ? 4 : 64));
const iters = Math.max(1, Number(values.iters));
const n = Math.floor((mib * (1 << 20)) / 4 / 4096) * 4096; // float32 values, a multiple of 4096

const src = gaussian(n, 1, 0.02);
const q = {
  q4_0: ggmlQuantize("q4_0", src, 1),
  q8_0: ggmlQuantize("q8_0", src, 1),
  q4_k: ggmlQuantize("q4_k", src, 1),
  q5_k: ggmlQuantize("q5_k", src, 1),
  q6_k: ggmlQuantize("q6_k", src, 1),
};
const nf4 = nf4Reference(src, 64);
const cols = 4096, rows = n / cols;
const x = gaussian(cols, 2);

interface Row {
  kernel: string;
  bytes: number;
  ms: number;
  gbps: number;
  kernelGbps?: number;
  ofBandwidth?: number;
  correct: boolean;
}

const same = (a: ArrayBufferView, b: ArrayBufferView) => {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};
const deq: Record<string, Float32Array> = {};
for (const t of ["q4_0", "q8_0", "q4_k", "q5_k", "q6_k"] as const) {
  deq[t] = ggmlDequantize(t, q[t], n);
}
deq.nf4 = new Float32Array(n).map((_, i) =>
  NF4_CODEBOOK_F32[i % 2 ? nf4.codes[i >> 1] & 15 : nf4.codes[i >> 1] >> 4] * nf4.absmax[i >> 6]
);
/** y = W x in float64 from the reference dequantized weights, within float32 tolerance. */
function gemvCheck(w: Float32Array, y: Float32Array): boolean {
  for (let r = 0; r < rows; r++) {
    let sum = 0, mag = 0;
    for (let c = 0; c < cols; c++) {
      sum += w[r * cols + c] * x[c];
      mag += Math.abs(w[r * cols + c] * x[c]);
    }
    if (!(Math.abs(sum - y[r]) <= 1e-5 * mag + 1e-30)) return false;
  }
  return true;
}

async function measure(
  kernel: string,
  bytes: number,
  run: () => Promise<unknown>,
  check: (r: unknown) => boolean,
): Promise<Row> {
  const correct = check(await run()); // warm-up: compiles the pipeline
  const times: number[] = [], kernelTimes: number[] = [];
  for (let i = 0; i < iters; i++) {
    gpu.resetKernelTime();
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
    if (gpu.kernelTimeNs !== undefined) kernelTimes.push(gpu.kernelTimeNs / 1e6);
  }
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
  const ms = med(times);
  const row: Row = { kernel, bytes, ms, gbps: bytes / ms / 1e6, correct };
  if (kernelTimes.length && med(kernelTimes) > 0) {
    row.kernelGbps = bytes / med(kernelTimes) / 1e6;
    if (bandwidth) row.ofBandwidth = row.kernelGbps / bandwidth;
  }
  return row;
}

const rowsOut: Row[] = [];
for (const t of ["q4_0", "q8_0"] as const) {
  rowsOut.push(
    await measure(
      `quantize ${t}`,
      n * 4 + q[t].length,
      () => gpu.quantize(t, src),
      (r) => same(r as Uint8Array, q[t]),
    ),
  );
}
rowsOut.push(
  await measure(
    "quantize nf4",
    n * 4 + nf4.codes.length + nf4.absmax.byteLength,
    () => gpu.quantizeNf4(src),
    (r) => same((r as { codes: Uint8Array }).codes, nf4.codes),
  ),
);
for (const t of ["q4_0", "q8_0", "q4_k", "q5_k", "q6_k"] as const) {
  rowsOut.push(
    await measure(
      `dequantize ${t}`,
      q[t].length + n * 4,
      () => gpu.dequantize(t, q[t], n),
      (r) => (r as Float32Array).length === n,
    ),
  );
}
rowsOut.push(
  await measure(
    "dequantize nf4",
    nf4.codes.length + nf4.absmax.byteLength + n * 4,
    () => gpu.dequantizeNf4(nf4.codes, nf4.absmax, n),
    (r) => same(r as Float32Array, deq.nf4),
  ),
);
for (const t of ["q4_0", "q8_0"] as const) {
  rowsOut.push(
    await measure(
      `gemv ${t} ${rows}x${cols}`,
      q[t].length + cols * 4 + rows * 4,
      () => gpu.gemv(t, q[t], rows, cols, x),
      (r) => gemvCheck(deq[t], r as Float32Array),
    ),
  );
}
rowsOut.push(
  await measure(
    `gemv nf4 ${rows}x${cols}`,
    nf4.codes.length + nf4.absmax.byteLength + cols * 4 + rows * 4,
    () => gpu.gemv("nf4", nf4, rows, cols, x),
    (r) => gemvCheck(deq.nf4, r as Float32Array),
  ),
);
gpu.destroy();

if (values.json) {
  console.log(
    JSON.stringify(
      { adapter: info, bandwidthGBps: bandwidth ?? null, mib, iters, results: rowsOut },
      null,
      2,
    ),
  );
} else {
  console.log(
    `adapter: ${info.name}${info.isFallbackAdapter ? " (software fallback)" : ""}; ` +
      `features: ${info.features.join(", ") || "none"}; memory bandwidth: ${
        bandwidth ? `${bandwidth} GB/s` : "unknown"
      }; ${mib} MiB of float32 per call, median of ${iters}`,
  );
  console.log(
    "kernel".padEnd(28) + "MB moved".padStart(10) + "ms".padStart(10) + "GB/s e2e".padStart(10) +
      "GB/s kern".padStart(11) + "% of BW".padStart(9) + "  ok",
  );
  for (const r of rowsOut) {
    console.log(
      r.kernel.padEnd(28) + (r.bytes / 1e6).toFixed(1).padStart(10) + r.ms.toFixed(1).padStart(10) +
        r.gbps.toFixed(2).padStart(10) + (r.kernelGbps?.toFixed(2) ?? "n/a").padStart(11) +
        (r.ofBandwidth !== undefined ? (100 * r.ofBandwidth).toFixed(1) : "n/a").padStart(9) +
        `  ${r.correct ? "yes" : "NO"}`,
    );
  }
}
if (rowsOut.some((r) => !r.correct)) Deno.exitCode = 1;
