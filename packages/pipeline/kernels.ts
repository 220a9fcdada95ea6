/**
 * The kernels a job runs on: the CPU worker pool or WebGPU, plus the error measurement of every
 * quantized chunk.
 * @module
 */
import { cpus } from "node:os";
import type { FileRange } from "@quantx/core";
import { type QuantType, WorkerPool } from "@quantx/kernels";
import { WebGpuKernels } from "@quantx/kernels/webgpu";
import type { QuantizeOptions, RunControl } from "./options.ts";
import { ErrorStats } from "./stats.ts";
import { UserError } from "./user_error.ts";
import type { FileValues } from "./weights.ts";
import type { FileTask } from "./io_worker.ts";

/** Quantizes chunks for a job. */
export interface Kernels {
  /** Backend in use, for messages (`cpu (2 threads)`, `webgpu (<adapter>)`). */
  readonly description: string;
  /** How many chunks a job should keep in flight to keep every worker busy. */
  readonly parallelism: number;
  /**
   * Quantize whole rows of `rowLength` values; with `measure`, also decode the result and
   * return the error against `values`. `values` may be taken over (its buffer detached); `spare`
   * is then that buffer handed back once done, for the caller to read the next chunk into.
   */
  quantize(
    type: QuantType,
    values: Float32Array,
    rowLength: number,
    measure: boolean,
  ): Promise<Quantized>;
  /**
   * Like {@link Kernels.quantize} for values the kernels read from the file themselves, on their
   * worker threads, so that the bytes never pass through the main thread; with `target`, they
   * also write the result there themselves (`bytes` then comes back empty). Absent where the
   * kernels do not run on workers (one thread, WebGPU): reading ahead and writing on the main
   * thread is then faster.
   */
  quantizeFile?(
    type: QuantType,
    src: FileValues,
    rowLength: number,
    measure: boolean,
    target?: FileRange,
  ): Promise<Quantized>;
  /** Release workers or the device. */
  close(): void;
}

/** What {@link Kernels.quantize} returns. */
export interface Quantized {
  /** The quantized rows. */
  bytes: Uint8Array;
  /** The error against the input, when measured. */
  stats?: ErrorStats;
  /** The input's buffer, when the kernels took it over and are done with it. */
  spare?: ArrayBuffer;
}

/** CPU kernels on a worker pool of `threads` workers; errors are measured in the workers too. */
export function cpuKernels(threads: number): Kernels {
  // the pipeline's worker: the kernels' tasks, plus chunks read from and written to files
  const pool = new WorkerPool(threads, { workerUrl: new URL("./io_worker.ts", import.meta.url) });
  // Each chunk goes whole to one worker (its buffer transferred, not copied, and handed back for
  // the next read; or only its place in the file); the job keeps `pool.capacity` in flight.
  const run = async (
    type: QuantType,
    src: Float32Array,
    rowLength: number,
    measure: boolean,
  ): Promise<Quantized> => {
    const r = await pool.quantizeOnOneWorker(type, src, rowLength, measure);
    return { bytes: r.bytes, stats: r.stats && ErrorStats.fromSums(r.stats), spare: r.spare };
  };
  const runFile = async (
    type: QuantType,
    src: FileValues,
    rowLength: number,
    measure: boolean,
    target?: FileRange,
  ): Promise<Quantized> => {
    const task: FileTask = { src, target };
    const r = await pool.runOnWorker(type, src.count, rowLength, measure, task);
    return { bytes: r.bytes, stats: r.stats && ErrorStats.fromSums(r.stats) };
  };
  return {
    description: `cpu (${threads} thread${threads === 1 ? "" : "s"})`,
    parallelism: pool.capacity,
    quantize: run,
    quantizeFile: threads > 1 && typeof globalThis.Worker === "function" ? runFile : undefined,
    close: () => pool.close(),
  };
}

/** Types the WebGPU backend quantizes; the rest of a job runs on the CPU kernels. */
const GPU_TYPES: ReadonlySet<string> = new Set(["q4_0", "q8_0"]);

/** WebGPU kernels for q4_0 / q8_0, falling back to `cpu` for every other type. */
export function webgpuKernels(gpu: WebGpuKernels, cpu: Kernels): Kernels {
  const info = gpu.adapterInfo;
  const name = info.description || info.device || info.vendor || "adapter";
  return {
    description: `webgpu (${name}${info.isFallbackAdapter ? ", software" : ""})`,
    parallelism: Math.max(2, cpu.parallelism),
    async quantize(type, values, rowLength, measure) {
      if (!GPU_TYPES.has(type)) return cpu.quantize(type, values, rowLength, measure);
      const bytes = await gpu.quantize(type as "q4_0" | "q8_0", values);
      if (!measure) return { bytes };
      const decoded = await gpu.dequantize(type as "q4_0" | "q8_0", bytes, values.length);
      const stats = new ErrorStats();
      stats.add(values, decoded);
      return { bytes, stats };
    },
    close() {
      gpu.destroy();
      cpu.close();
    },
  };
}

/**
 * Kernels for `options.backend`: `cpu` (default), `webgpu` (an error when no adapter is
 * available) or `auto` (WebGPU on a hardware adapter, otherwise the CPU, with a notice).
 */
export async function makeKernels(
  options: QuantizeOptions,
  control: RunControl = {},
): Promise<Kernels> {
  const cpu = cpuKernels(options.threads ?? cpus().length);
  const backend = options.backend ?? "cpu";
  if (backend === "cpu") return cpu;
  let gpu: WebGpuKernels;
  try {
    gpu = await WebGpuKernels.create({ allowFallbackAdapter: backend === "webgpu" });
  } catch (e) {
    if (backend === "auto") {
      control.onNotice?.(`WebGPU not available (${(e as Error).message}); using the CPU`);
      return cpu;
    }
    cpu.close();
    throw new UserError(`--backend webgpu: ${(e as Error).message}`);
  }
  if (backend === "auto" && gpu.adapterInfo.isFallbackAdapter) {
    gpu.destroy();
    control.onNotice?.("WebGPU adapter is a software fallback; using the CPU");
    return cpu;
  }
  const kernels = webgpuKernels(gpu, cpu);
  control.onNotice?.(`backend: ${kernels.description}`);
  return kernels;
}
