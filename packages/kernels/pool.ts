/**
 * A pool of web Workers that quantizes and dequantizes large tensors in parallel. Inputs are cut
 * into whole rows (or whole blocks), each chunk goes to a worker as a transferred buffer, and the
 * results are put back in order, so the bytes never depend on the number of threads. Small inputs,
 * one thread, or a runtime without `Worker` run inline on the calling thread.
 * @module
 */
import { ERROR_SUM_FIELDS, errorSumsInto } from "./error_sums.ts";
import { dequantizeInto, quantizeInto } from "./quantize.ts";
import { ggmlType, type QuantType, rowSize } from "./types.ts";

/**
 * Error statistics of `y = dequantize(quantize(x))` against `x`, summed in float64. Pairs where
 * `x` or `y` is not finite are counted in `nonFinite` and left out of the sums and of `maxAbs`.
 * RMSE = `sqrt(sumSq / count)`, cosine = `dot / sqrt(sumSqRef * sumSqOut)`,
 * SNR (dB) = `10 * log10(sumSqRef / sumSq)`.
 */
export interface QuantErrorStats {
  /** Σ (x − y)². */
  sumSq: number;
  /** Σ x². */
  sumSqRef: number;
  /** Σ x·y. */
  dot: number;
  /** Σ y². */
  sumSqOut: number;
  /** max |x − y|. */
  maxAbs: number;
  /** Pairs with a non-finite `x` or `y`. */
  nonFinite: number;
  /** Values compared (finite or not). */
  count: number;
}

/** Quantized bytes with the error statistics of their round trip. */
export interface QuantizedWithStats {
  /** The quantized tensor, as {@link WorkerPool.quantize} returns it. */
  bytes: Uint8Array;
  /** Round-trip error statistics over the whole tensor. */
  stats: QuantErrorStats;
}

/** Options of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /**
   * Inputs with fewer values than this run inline (default 65536). Set 0 to always use workers
   * (when `threads > 1` and the runtime has `Worker`).
   */
  minParallelValues?: number;
  /**
   * Module the workers run (default: the kernels' own worker). A custom worker answers the same
   * {@link PoolTask} messages, for example with {@link taskReply}, and can serve tasks that carry
   * an `extra` payload (see {@link WorkerPool.runOnWorker}), such as values to read from a file.
   */
  workerUrl?: URL | string;
}

/** One unit of work, as posted to a worker (internal protocol between pool.ts and worker.ts). */
export interface PoolTask {
  /** Task id, echoed in the reply. */
  id: number;
  /** What to do. */
  op: "quantize" | "dequantize" | "stats";
  /** ggml type name. */
  type: string;
  /** Values per row (stats are per row). */
  rowLength: number;
  /** Values in this chunk. */
  count: number;
  /** float32 values (quantize, stats) or quantized bytes (dequantize); absent with `extra`. */
  data?: ArrayBuffer;
  /** quantize, stats: `data` holds little-endian f16 or bf16 values to widen first. */
  input?: "f16" | "bf16";
  /** For a custom worker: what it needs instead of `data` (structured-cloneable, not read here). */
  extra?: unknown;
}

/** Half-precision values still in their stored bytes (widened to float32 in the worker). */
export interface RawHalfValues {
  /** Storage type of `bytes`. */
  dtype: "f16" | "bf16";
  /** Little-endian values, 2 bytes each. */
  bytes: Uint8Array;
}

/** What a task gives back: its result, per-row statistics, and (quantize, stats) its input buffer. */
export interface PoolResult {
  /** Quantized bytes or decoded float32 values. */
  out: ArrayBuffer;
  /** `stats` tasks: the {@link ERROR_SUM_FIELDS} error sums of each row. */
  rowStats?: ArrayBuffer;
  /** quantize and stats tasks: `task.data`, done with and handed back for reuse. */
  input?: ArrayBuffer;
}

/** A worker's reply (internal protocol). */
export type PoolReply =
  | ({ id: number; ok: true } & PoolResult)
  | { id: number; ok: false; name: string; message: string };

/** Reused buffers for widening f16/bf16 input and for decoding in `stats` tasks (tasks run one at
 * a time per thread). */
let widenScratch = new Float32Array(0);
let decodeScratch = new Float32Array(0);

/**
 * Runs one task on this thread (used by the workers, custom ones included, and by the pool's
 * inline path). `task.data` is required here; `extra` is ignored. With `into` (at least the
 * result's size), a quantize or stats result is written to its start instead of a new buffer, and
 * `out` comes back empty.
 */
export function runPoolTask(task: PoolTask, into?: Uint8Array): PoolResult {
  if (!task.data) throw new TypeError("runPoolTask: the task has no data");
  if (task.op === "dequantize") {
    const dst = new Float32Array(task.count);
    dequantizeInto(task.type, new Uint8Array(task.data), dst);
    return { out: dst.buffer };
  }
  let src: Float32Array;
  if (task.input) {
    if (widenScratch.length < task.count) widenScratch = new Float32Array(task.count);
    src = widenScratch.subarray(0, task.count);
    dequantizeInto(task.input, new Uint8Array(task.data, 0, task.count * 2), src);
  } else {
    src = new Float32Array(task.data, 0, task.count);
  }
  const size = rowSize(task.type, task.count);
  const bytes = into ? into.subarray(0, size) : new Uint8Array(size);
  quantizeInto(task.type, src, bytes);
  const out = into ? new ArrayBuffer(0) : bytes.buffer as ArrayBuffer;
  if (task.op === "quantize") return { out, input: task.data };
  if (decodeScratch.length < task.count) decodeScratch = new Float32Array(task.count);
  const back = decodeScratch.subarray(0, task.count);
  dequantizeInto(task.type, bytes, back);
  const sums = rowStats(src, back, task.rowLength).buffer;
  return { out, rowStats: sums, input: task.data };
}

/**
 * A worker's answer to `task`: the result of `run(task)` (by default {@link runPoolTask}) with the
 * buffers to transfer, or the error it threw, as name and message.
 */
export function taskReply(
  task: PoolTask,
  run: (task: PoolTask) => PoolResult = runPoolTask,
): { reply: PoolReply; transfer: ArrayBuffer[] } {
  try {
    const result = run(task);
    const transfer = [result.out, result.rowStats, result.input].filter((b) => b !== undefined);
    return { reply: { id: task.id, ok: true, ...result }, transfer };
  } catch (err) {
    const name = err instanceof Error ? err.name : "Error";
    const message = err instanceof Error ? err.message : String(err);
    return { reply: { id: task.id, ok: false, name, message }, transfer: [] };
  }
}

function rowStats(x: Float32Array, y: Float32Array, rowLength: number): Float64Array<ArrayBuffer> {
  const rows = x.length / rowLength;
  const out = new Float64Array(rows * ERROR_SUM_FIELDS);
  for (let r = 0; r < rows; r++) {
    errorSumsInto(x, y, r * rowLength, (r + 1) * rowLength, out, r * ERROR_SUM_FIELDS);
  }
  return out;
}

/** The bytes (and statistics) of a quantize or stats task's result. */
function result(
  reply: PoolResult,
  count: number,
  withStats: boolean,
): { bytes: Uint8Array; stats?: QuantErrorStats } {
  const bytes = new Uint8Array(reply.out);
  if (!withStats) return { bytes };
  const stats = emptyStats(count);
  addRows(stats, new Float64Array(reply.rowStats!));
  return { bytes, stats };
}

function emptyStats(count: number): QuantErrorStats {
  return { sumSq: 0, sumSqRef: 0, dot: 0, sumSqOut: 0, maxAbs: 0, nonFinite: 0, count };
}

/** Adds per-row statistics in row order (so the sums do not depend on the chunking). */
function addRows(into: QuantErrorStats, rows: Float64Array): void {
  for (let o = 0; o < rows.length; o += ERROR_SUM_FIELDS) {
    into.sumSq += rows[o];
    into.sumSqRef += rows[o + 1];
    into.dot += rows[o + 2];
    into.sumSqOut += rows[o + 3];
    if (rows[o + 4] > into.maxAbs) into.maxAbs = rows[o + 4];
    into.nonFinite += rows[o + 5];
  }
}

function rebuildError(name: string, message: string): Error {
  const ctor = name === "TypeError" ? TypeError : name === "RangeError" ? RangeError : Error;
  const err = new ctor(message);
  if (err.name !== name) err.name = name;
  return err;
}

interface Job {
  task: PoolTask;
  resolve(reply: PoolResult): void;
  reject(err: unknown): void;
}

interface Slot {
  worker: Worker;
  /** Tasks posted to this worker, oldest (running) first. */
  jobs: Job[];
}

/**
 * Tasks a worker holds at once: the one it runs and the next, so that it starts the next as soon
 * as it is done instead of waiting for the main thread to answer its reply (on a busy machine that
 * round trip costs a tenth of a millisecond or more per task).
 */
const TASKS_PER_WORKER = 2;

interface WorkerLike {
  new (url: URL, options: { type: "module" }): Worker;
}

function defaultThreads(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return typeof n === "number" && n >= 1 ? Math.floor(n) : 1;
}

/**
 * A pool of web Workers for quantizing and dequantizing ggml types. Results are byte-identical to
 * `quantize()` / `dequantize()` for any number of threads. Call {@link WorkerPool.close} when done
 * (idle workers are kept for the next call).
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@quantx/kernels";
 * const pool = new WorkerPool(4);
 * try {
 *   const values = new Float32Array(4096 * 64).map((_, i) => Math.sin(i));
 *   const bytes = await pool.quantize("q4_k", values, 4096);
 *   const back = await pool.dequantize("q4_k", bytes, values.length, 4096);
 *   console.log(bytes.length, back.length); // 147456 262144
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class WorkerPool {
  /** Number of workers the pool runs at most. */
  readonly threads: number;
  readonly #minParallel: number;
  readonly #workerUrl: string;
  #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextId = 1;
  #closed = false;

  constructor(threads: number = defaultThreads(), options: WorkerPoolOptions = {}) {
    if (!Number.isSafeInteger(threads) || threads < 1) {
      throw new RangeError(`WorkerPool: threads must be a positive integer, got ${threads}`);
    }
    this.threads = threads;
    const min = options.minParallelValues ?? 65536;
    if (!(min >= 0)) throw new RangeError(`WorkerPool: minParallelValues must be >= 0, got ${min}`);
    this.#minParallel = min;
    this.#workerUrl = String(options.workerUrl ?? new URL("./worker.ts", import.meta.url));
  }

  /**
   * Quantizes a row-major tensor of `src.length / rowLength` rows to `type`; `rowLength` must be
   * a multiple of the type's block size. Equal to `quantize(type, src)`.
   */
  async quantize(type: QuantType, src: Float32Array, rowLength: number): Promise<Uint8Array> {
    const { bytes } = await this.#quantize(type, src, rowLength, false);
    return bytes;
  }

  /**
   * Like {@link WorkerPool.quantize}, and also compares `src` with the dequantized result in the
   * workers (see {@link QuantErrorStats}); the statistics do not depend on the thread count.
   */
  quantizeWithStats(
    type: QuantType,
    src: Float32Array,
    rowLength: number,
  ): Promise<QuantizedWithStats> {
    return this.#quantize(type, src, rowLength, true) as Promise<QuantizedWithStats>;
  }

  /**
   * Quantizes all of `src` (whole rows of `rowLength`) on ONE worker, with the error statistics
   * when `withStats`; concurrent calls spread over the workers, so a caller streaming chunks keeps
   * every worker busy without splitting each chunk. `src` is float32 values, or f16/bf16 bytes
   * that the worker widens (exactly, as `dequantize("f16" | "bf16", ...)`) before quantizing. Its
   * buffer is transferred (and detached) when `src` spans it exactly, and then handed back as
   * `spare` once the worker is done with it, for the caller to reuse; otherwise it is copied.
   * Runs inline with one thread.
   */
  async quantizeOnOneWorker(
    type: QuantType,
    src: Float32Array | RawHalfValues,
    rowLength: number,
    withStats = false,
  ): Promise<{ bytes: Uint8Array; stats?: QuantErrorStats; spare?: ArrayBuffer }> {
    this.#checkOpen();
    const t = ggmlType(type);
    const raw = src instanceof Float32Array ? undefined : src;
    if (!raw && !(src instanceof Float32Array)) {
      throw new TypeError("quantize: src must be a Float32Array");
    }
    if (raw && (raw.dtype !== "f16" && raw.dtype !== "bf16" || raw.bytes.length % 2 !== 0)) {
      throw new TypeError("quantize: raw values must be f16 or bf16 bytes, 2 per value");
    }
    const view = raw ? raw.bytes : src as Float32Array;
    const count = raw ? raw.bytes.length / 2 : (src as Float32Array).length; // before any transfer
    checkLength(count, rowLength, "quantize");
    const owns = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength &&
      view.buffer instanceof ArrayBuffer;
    const task: PoolTask = {
      id: 0,
      op: withStats ? "stats" : "quantize",
      type: t.name,
      rowLength,
      count,
      data: owns ? view.buffer as ArrayBuffer : view.slice().buffer,
      input: raw?.dtype,
    };
    const canWork = typeof (globalThis as { Worker?: unknown }).Worker === "function";
    const reply = !canWork || this.threads <= 1 ? runPoolTask(task) : await this.#submit(task);
    return { ...result(reply, count, withStats), spare: owns ? reply.input : undefined };
  }

  /**
   * Like {@link WorkerPool.quantizeOnOneWorker} for a custom worker (see
   * {@link WorkerPoolOptions.workerUrl}): `count` values of whole rows, quantized to `type` from
   * whatever `extra` tells the worker (for example a range of a file to read). `bytes` is what
   * the worker sends back (it may write the result elsewhere itself and send nothing). Needs
   * worker threads: `threads > 1` and a runtime with `Worker`.
   */
  async runOnWorker(
    type: QuantType,
    count: number,
    rowLength: number,
    withStats: boolean,
    extra: unknown,
  ): Promise<{ bytes: Uint8Array; stats?: QuantErrorStats }> {
    this.#checkOpen();
    const t = ggmlType(type);
    checkLength(count, rowLength, "quantize");
    if (typeof (globalThis as { Worker?: unknown }).Worker !== "function" || this.threads <= 1) {
      throw new Error("WorkerPool.runOnWorker: needs worker threads (threads > 1 and Worker)");
    }
    const op = withStats ? "stats" : "quantize";
    const task: PoolTask = { id: 0, op, type: t.name, rowLength, count, extra };
    return result(await this.#submit(task), count, withStats);
  }

  /**
   * Decodes `count` values of `type` from `data`. Chunks are whole rows of `rowLength` values
   * when given, whole blocks otherwise. Equal to `dequantize(type, data, count)`.
   */
  async dequantize(
    type: QuantType,
    data: Uint8Array,
    count: number,
    rowLength?: number,
  ): Promise<Float32Array> {
    this.#checkOpen();
    const t = ggmlType(type);
    const unit = rowLength ?? t.blockSize;
    checkLength(count, unit, "dequantize");
    const unitBytes = rowSize(t, unit);
    const need = (count / unit) * unitBytes;
    if (!(data instanceof Uint8Array)) throw new TypeError("dequantize: data must be a Uint8Array");
    if (data.length < need) {
      throw new RangeError(
        `dequantize ${t.name}: ${count} values need ${need} bytes, got ${data.length}`,
      );
    }
    const out = new Float32Array(count);
    const chunks = this.#split(count / unit, unit);
    if (chunks.length <= 1) {
      dequantizeInto(t.name, data.subarray(0, need), out);
      return out;
    }
    await Promise.all(chunks.map(async ([u0, u1]) => {
      const reply = await this.#submit({
        id: 0,
        op: "dequantize",
        type: t.name,
        rowLength: unit,
        count: (u1 - u0) * unit,
        data: data.slice(u0 * unitBytes, u1 * unitBytes).buffer,
      });
      out.set(new Float32Array(reply.out), u0 * unit);
    }));
    return out;
  }

  /**
   * Tasks the workers run or hold at once (two per worker: the one running and the next). A
   * caller streaming chunks through {@link WorkerPool.quantizeOnOneWorker} keeps this many in
   * flight to keep every worker busy.
   */
  get capacity(): number {
    return this.threads * TASKS_PER_WORKER;
  }

  /** Workers started so far and still running (they start on first use). */
  get workers(): number {
    return this.#slots.length;
  }

  /** Terminates every worker; pending and later calls reject. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new Error("WorkerPool: closed");
    for (const slot of this.#slots) {
      slot.worker.terminate();
      for (const job of slot.jobs) job.reject(err);
    }
    for (const job of this.#queue) job.reject(err);
    this.#slots = [];
    this.#queue = [];
  }

  async #quantize(
    type: QuantType,
    src: Float32Array,
    rowLength: number,
    withStats: boolean,
  ): Promise<{ bytes: Uint8Array; stats?: QuantErrorStats }> {
    this.#checkOpen();
    const t = ggmlType(type);
    if (!(src instanceof Float32Array)) throw new TypeError("quantize: src must be a Float32Array");
    checkLength(src.length, rowLength, "quantize");
    const rowBytes = rowSize(t, rowLength);
    const rows = src.length / rowLength;
    const bytes = new Uint8Array(rows * rowBytes);
    const stats = withStats ? emptyStats(src.length) : undefined;
    const chunks = this.#split(rows, rowLength);
    const op = withStats ? "stats" : "quantize";
    if (chunks.length <= 1) {
      if (!withStats) {
        quantizeInto(t.name, src, bytes);
        return { bytes };
      }
      const r = runPoolTask({
        id: 0,
        op,
        type: t.name,
        rowLength,
        count: src.length,
        data: src.slice().buffer,
      });
      bytes.set(new Uint8Array(r.out));
      addRows(stats!, new Float64Array(r.rowStats!));
      return { bytes, stats };
    }
    const rowStats: Float64Array[] = new Array(chunks.length);
    await Promise.all(chunks.map(async ([r0, r1], i) => {
      const reply = await this.#submit({
        id: 0,
        op,
        type: t.name,
        rowLength,
        count: (r1 - r0) * rowLength,
        data: src.slice(r0 * rowLength, r1 * rowLength).buffer,
      });
      bytes.set(new Uint8Array(reply.out), r0 * rowBytes);
      if (reply.rowStats) rowStats[i] = new Float64Array(reply.rowStats);
    }));
    if (stats) { for (const r of rowStats) addRows(stats, r); }
    return { bytes, stats };
  }

  /** Splits `units` units of `unitValues` values into chunks; one chunk means "run inline". */
  #split(units: number, unitValues: number): [number, number][] {
    const values = units * unitValues;
    const canWork = typeof (globalThis as { Worker?: unknown }).Worker === "function";
    if (!canWork || this.threads <= 1 || units <= 1 || values < this.#minParallel || values === 0) {
      return [[0, units]];
    }
    // About two chunks per worker for balance, none below 16 Ki values (or minParallelValues,
    // when smaller) unless units are larger.
    const minChunk = Math.min(16384, this.#minParallel);
    const byWork = minChunk > 0 ? Math.max(1, Math.floor(values / minChunk)) : units;
    const n = Math.min(units, this.threads * 2, byWork);
    const out: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const a = Math.floor((units * i) / n), b = Math.floor((units * (i + 1)) / n);
      if (b > a) out.push([a, b]);
    }
    return out;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("WorkerPool: closed");
  }

  #submit(task: PoolTask): Promise<PoolResult> {
    if (this.#closed) return Promise.reject(new Error("WorkerPool: closed"));
    task.id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#queue.push({ task, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      // an idle worker first, then a new one, then one with room for a next task
      let slot = this.#slots.find((s) => s.jobs.length === 0);
      if (!slot && this.#slots.length < this.threads) slot = this.#spawn();
      slot ??= this.#slots.find((s) => s.jobs.length < TASKS_PER_WORKER);
      if (!slot) return;
      const job = this.#queue.shift()!;
      slot.jobs.push(job);
      slot.worker.postMessage(job.task, job.task.data ? [job.task.data] : []);
    }
  }

  #spawn(): Slot {
    const W = (globalThis as unknown as { Worker: WorkerLike }).Worker;
    const worker = new W(new URL(this.#workerUrl), { type: "module" });
    const slot: Slot = { worker, jobs: [] };
    worker.onmessage = (e: MessageEvent<PoolReply>) => {
      const job = slot.jobs[0];
      if (!job || e.data.id !== job.task.id) {
        fail(e, `worker replied to task ${e.data.id}, expected ${job?.task.id ?? "none"}`);
        return;
      }
      slot.jobs.shift();
      const reply = e.data;
      if (reply.ok) job.resolve({ out: reply.out, rowStats: reply.rowStats, input: reply.input });
      else job.reject(rebuildError(reply.name, reply.message));
      this.#pump();
    };
    const fail = (e: Event, message: string) => {
      e.preventDefault();
      const jobs = slot.jobs;
      slot.jobs = [];
      worker.terminate();
      this.#slots = this.#slots.filter((s) => s !== slot);
      for (const job of jobs) job.reject(new Error(`WorkerPool: ${message}`));
      this.#pump();
    };
    worker.onerror = (e: ErrorEvent) => fail(e, `worker failed: ${e.message}`);
    worker.onmessageerror = (e: MessageEvent) => fail(e, "worker reply could not be read");
    this.#slots.push(slot);
    return slot;
  }
}

function checkLength(count: number, rowLength: number, op: string): void {
  if (!Number.isSafeInteger(rowLength) || rowLength < 1) {
    throw new RangeError(`${op}: row length ${rowLength} is not a positive integer`);
  }
  if (!Number.isSafeInteger(count) || count < 0 || count % rowLength !== 0) {
    throw new RangeError(`${op}: ${count} values is not a whole number of rows of ${rowLength}`);
  }
}
