/**
 * CPU kernel benchmark: single-thread quantize and dequantize throughput of every QuantX type
 * against libggml (`ggml_quantize_chunk` and the `dequantize_row_*` functions, loaded in this
 * process through Deno.dlopen) on the same input: N(0, 0.02) floats in rows of 4096, best of
 * several runs. Throughput is float32 input megabytes (2^20 bytes) per second; the ratio is
 * QuantX / libggml. Outputs are checked to be identical before timing.
 * A second table (unless `--no-pool`) shows the 2-worker WorkerPool speed-up.
 *
 *   deno run -A tools/setup.ts   # once: installs libggml into .cache/npm
 *   deno run -A bench/kernels.ts [--types q4_0,q8_0] [--mb 16] [--runs 3] [--no-pool]
 */
import { parseArgs } from "node:util";
import { DEQUANT_SYMBOL, libggml } from "../tests/support/libggml.ts";
import { gaussian } from "../tests/support/random.ts";
import {
  dequantizeInto,
  ggmlType,
  QUANT_TYPES,
  quantizeInto,
  type QuantType,
  rowSize,
  WorkerPool,
} from "../packages/kernels/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    types: { type: "string", default: QUANT_TYPES.filter((t) => t !== "f32").join(",") },
    mb: { type: "string", default: "16" },
    runs: { type: "string", default: "3" },
    "no-pool": { type: "boolean", default: false },
  },
});

const COLS = 4096;
const types = values.types!.split(",").map((t) => t.trim().toLowerCase()) as QuantType[];
for (const t of types) {
  if (!QUANT_TYPES.includes(t)) {
    throw new Error(`unknown type ${t} (one of ${QUANT_TYPES.join(", ")})`);
  }
}
const rows = Math.max(1, Math.round((Number(values.mb) * 2 ** 20) / 4 / COLS));
const runs = Math.max(1, Number(values.runs));
const n = rows * COLS;
const src = gaussian(n, 1234, 0.02);
const mbIn = (n * 4) / 2 ** 20;

/** Best wall time in seconds of `runs` calls of `fn` (after one warm-up call). */
function best(fn: () => void): number {
  fn();
  let t = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const lib = libggml().symbols;
const fmt = (x: number) => x >= 100 ? x.toFixed(0) : x.toFixed(1);
const ratio = (x: number) => x.toFixed(2) + "x";

console.log(
  `# CPU kernels: ${rows}x${COLS} float32 (${mbIn.toFixed(0)} MB), single thread, best of ${runs}`,
);
console.log(`Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.target}\n`);
console.log(
  "| type | quantx quantize MB/s | libggml quantize MB/s | ratio | quantx dequantize MB/s | libggml dequantize MB/s | ratio |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|");
const single: Record<string, number> = {};
for (const type of types) {
  const t = ggmlType(type);
  const size = rowSize(type, COLS) * rows;
  const ours = new Uint8Array(size), theirs = new Uint8Array(size);
  lib.ggml_quantize_init(t.id);
  const tq = best(() => quantizeInto(type, src, ours));
  const tqg = best(() =>
    lib.ggml_quantize_chunk(t.id, src, theirs, 0n, BigInt(rows), BigInt(COLS), null)
  );
  if (!sameBytes(ours, theirs)) throw new Error(`${type}: QuantX and libggml bytes differ`);
  const out = new Float32Array(n), outg = new Float32Array(n);
  const dq = lib[DEQUANT_SYMBOL[type] as "dequantize_row_q4_0"] as (
    a: Uint8Array,
    b: Float32Array,
    k: bigint,
  ) => void;
  const td = best(() => dequantizeInto(type, ours, out));
  const tdg = best(() => dq(theirs, outg, BigInt(n)));
  if (!sameBytes(new Uint8Array(out.buffer), new Uint8Array(outg.buffer))) {
    throw new Error(`${type}: QuantX and libggml dequantized values differ`);
  }
  single[type] = mbIn / tq;
  console.log(
    `| ${type} | ${fmt(mbIn / tq)} | ${fmt(mbIn / tqg)} | ${ratio(tqg / tq)} | ${
      fmt(mbIn / td)
    } | ${fmt(mbIn / tdg)} | ${ratio(tdg / td)} |`,
  );
}

// ---- 2-worker scaling
if (!values["no-pool"]) {
  console.log();
  console.log(`## 2-worker scaling (WorkerPool(2).quantize, rows of ${COLS}, best of ${runs})\n`);
  console.log("| type | 1 thread MB/s | 2 workers MB/s | speed-up |");
  console.log("|---|---:|---:|---:|");
  const pool = new WorkerPool(2);
  try {
    for (const type of types) {
      const expected = new Uint8Array(rowSize(type, COLS) * rows);
      quantizeInto(type, src, expected);
      let bytes = await pool.quantize(type, src, COLS); // warm-up (starts the workers)
      if (!sameBytes(bytes, expected)) throw new Error(`${type}: WorkerPool bytes differ`);
      let t = Infinity;
      for (let r = 0; r < runs; r++) {
        const t0 = performance.now();
        bytes = await pool.quantize(type, src, COLS);
        t = Math.min(t, (performance.now() - t0) / 1000);
      }
      const one = single[type];
      console.log(
        `| ${type} | ${fmt(one)} | ${fmt(mbIn / t)} | ${ratio(mbIn / t / one)} |`,
      );
    }
  } finally {
    pool.close();
  }
}
