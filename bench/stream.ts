/**
 * Streaming benchmark for `quantx quantize`: builds a synthetic safetensors model (4 GB of F32 and
 * 2 GB of BF16 by default), quantizes it with the CLI under `/usr/bin/time -v`, and prints peak
 * resident memory and throughput for each type, and the speed-up of the default thread count over
 * `--threads 1`. Each configuration runs `--runs` times (alternating thread counts); the table
 * shows the median time and the largest peak RSS.
 *
 *   deno run -A bench/stream.ts [--gb 4] [--types q4_0,q8_0,q4_k] [--runs 3] [--keep]
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { createFileSink } from "@quantx/core";
import { SafetensorsWriter } from "@quantx/safetensors";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    gb: { type: "string", default: "4" },
    types: { type: "string", default: "q4_0,q8_0,q4_k" },
    dir: { type: "string", default: join(new URL("..", import.meta.url).pathname, ".cache/bench") },
    threads: { type: "boolean", default: true },
    runs: { type: "string", default: "3" },
    keep: { type: "boolean", default: false },
  },
});
const gb = Number(values.gb);
const types = values.types!.split(",");
await Deno.mkdir(values.dir!, { recursive: true });

const ROWS = 4096, COLS = 4096;

/** Write a model of `bytes` total in `dtype` (F32 or BF16) made of [4096, 4096] tensors. */
async function makeModel(path: string, dtype: "F32" | "BF16", bytes: number): Promise<void> {
  if (existsSync(path)) return;
  const per = ROWS * COLS * (dtype === "F32" ? 4 : 2);
  const count = Math.max(1, Math.round(bytes / per));
  const tensors = Array.from({ length: count }, (_, i) => ({
    name: `blk.${i}.weight`,
    dtype,
    shape: [ROWS, COLS],
  }));
  const sink = await createFileSink(path);
  const writer = new SafetensorsWriter(sink, tensors);
  await writer.writeHeader();
  let s = 12345;
  const f32 = new Float32Array(COLS * 256);
  const u32 = new Uint32Array(f32.buffer);
  const bf = new Uint16Array(f32.length);
  for (let t = 0; t < count; t++) {
    for (let r = 0; r < ROWS; r += 256) {
      for (let i = 0; i < f32.length; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        // sum of two uniforms: a cheap bell-shaped value in (-0.04, 0.04)
        f32[i] = ((s & 0xffff) + (s >>> 16) - 65535) * 6.1e-7;
      }
      if (dtype === "F32") await writer.write(new Uint8Array(f32.buffer));
      else {
        for (let i = 0; i < f32.length; i++) bf[i] = u32[i] >>> 16;
        await writer.write(new Uint8Array(bf.buffer));
      }
    }
  }
  await writer.finish();
}

interface Run {
  seconds: number;
  peakMb: number;
}

async function run(args: string[]): Promise<Run> {
  const cmd = new Deno.Command("/usr/bin/time", {
    args: [
      "-v",
      Deno.execPath(),
      "run",
      "-A",
      join(import.meta.dirname!, "../packages/cli/main.ts"),
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const t0 = performance.now();
  const out = await cmd.output();
  const seconds = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`quantx ${args.join(" ")} failed:\n${err}`);
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(err)?.[1] ?? NaN);
  return { seconds, peakMb: kb / 1024 };
}

const models = [
  {
    path: join(values.dir!, `synthetic-${gb}gb-f32.safetensors`),
    dtype: "F32" as const,
    bytes: gb * 1e9,
  },
  {
    path: join(values.dir!, `synthetic-${gb / 2}gb-bf16.safetensors`),
    dtype: "BF16" as const,
    bytes: (gb / 2) * 1e9,
  },
];
console.log(`cores: ${navigator.hardwareConcurrency}`);
console.log(
  "input                              type   threads  seconds  MB/s in   peak RSS MB   (all runs)",
);
for (const m of models) {
  await makeModel(m.path, m.dtype, m.bytes);
  const size = (await Deno.stat(m.path)).size;
  for (const type of types) {
    const out = join(values.dir!, `out-${type}.gguf`);
    const threadCounts = values.threads ? [0, 1] : [0];
    const runs = threadCounts.map(() => [] as Run[]);
    for (let k = 0; k < Number(values.runs); k++) {
      for (const [j, threads] of threadCounts.entries()) {
        const args = [
          "quantize",
          m.path,
          "-o",
          out,
          "--type",
          type,
          "--force",
          "--no-card",
          "--quiet",
        ];
        if (threads) args.push("--threads", String(threads));
        runs[j].push(await run(args));
        await Deno.remove(out).catch(() => {});
      }
    }
    const times: number[] = [];
    for (const [j, threads] of threadCounts.entries()) {
      const sorted = runs[j].map((r) => r.seconds).sort((a, b) => a - b);
      const seconds = sorted[Math.floor(sorted.length / 2)];
      const peakMb = Math.max(...runs[j].map((r) => r.peakMb));
      times.push(seconds);
      console.log(
        `${m.path.split("/").pop()!.padEnd(34)} ${type.padEnd(6)} ${
          String(threads || navigator.hardwareConcurrency).padStart(7)
        }  ${seconds.toFixed(2).padStart(7)}  ${(size / 1e6 / seconds).toFixed(0).padStart(7)}  ${
          peakMb.toFixed(0).padStart(11)
        }   (${sorted.map((x) => x.toFixed(2)).join(" ")})`,
      );
    }
    if (times.length === 2) {
      console.log(`  speed-up over --threads 1: ${(times[1] / times[0]).toFixed(2)}x`);
    }
  }
  if (!values.keep) await Deno.remove(m.path);
}
