/**
 * Writing bitsandbytes 4-bit safetensors: each shard streams tensor by tensor onto a
 * {@link ByteSink} (header first, computed from the plan), weights read and quantized in chunks of
 * whole blocks, so memory stays bounded by the chunk size (plus one float32 absmax per block of
 * the tensor being written).
 *
 * With double quantization, a parameter's quant_state JSON holds `nested_offset` (the mean of its
 * absmax values), whose text length the header must know before any data: {@link BnbWriter.prepare}
 * reads the shard's quantized weights once to compute those offsets, then
 * {@link BnbWriter.write} reads them again to quantize. (Without double quantization nothing is
 * read twice.)
 * @module
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { type ByteSink, createFileSink, type ProgressCallback } from "@quantx/core";
import {
  BNB_DYNAMIC_MAP,
  doubleQuantize,
  FP4_CODEBOOK,
  NF4_CODEBOOK,
  quantizeFp4,
  quantizeNf4,
} from "@quantx/kernels";
import {
  entryByteLength,
  type SafetensorsEntry,
  SafetensorsWriter,
  writeShardedIndex,
} from "@quantx/safetensors";
import {
  bnbConfigJson,
  type BnbInputTensor,
  type BnbOptions,
  bnbOutputs,
  type BnbPlan,
  type BnbPlanItem,
  type BnbShard,
  planBnb,
} from "./plan.ts";
import { type BnbQuantType, quantStateBytes } from "./quant_state.ts";

/** Where tensor data comes from (an opened `Checkpoint` from `@quantx/safetensors` fits). */
export interface BnbTensorSource {
  /** Elements `[start, start + count)` of a tensor as float32. */
  readF32(name: string, start: number, count: number): Promise<Float32Array>;
  /** Raw bytes `[offset, offset + length)` of a tensor's data. */
  read(name: string, offset: number, length: number): Promise<Uint8Array>;
}

/** A whole checkpoint to convert (an opened `Checkpoint` fits). */
export interface BnbCheckpointSource extends BnbTensorSource {
  /** Every tensor, in order. */
  readonly tensors: readonly BnbInputTensor[];
  /** The input's config.json, when there is one. */
  readonly config?: Record<string, unknown>;
}

/** Options of {@link BnbWriter}. */
export interface BnbWriteOptions {
  /** Aborting stops at the next chunk; the sink is aborted (a file sink removes its partial file). */
  signal?: AbortSignal;
  /** Progress per chunk: `phase` `"scan"` (double-quant offsets) or `"quantize"` / `"write"`. */
  onProgress?: ProgressCallback;
  /** Values per read (default 4 Mi; rounded down to whole blocks). */
  chunkValues?: number;
  /** Bytes already written before this shard, added to progress events (default 0). */
  bytesBefore?: number;
  /** Total bytes of the job for progress events (default: this shard's data). */
  bytesTotal?: number;
  /**
   * Called with every chunk of a quantized weight as it is written: the float32 `values` and their
   * `codes` and (float32, not yet double-quantized) `absmax`, e.g. to measure the error.
   */
  onQuantized?: (
    name: string,
    values: Float32Array,
    codes: Uint8Array,
    absmax: Float32Array,
  ) => void;
}

/**
 * The `quant_map` bitsandbytes stores for a type: `get_4bit_type(type)` (for FP4 entry 8 is +0,
 * not the -0 that the kernel decodes).
 */
export function bnbQuantMap(quantType: BnbQuantType): Float32Array {
  if (quantType === "nf4") return NF4_CODEBOOK.slice();
  const map = FP4_CODEBOOK.slice();
  map[8] = 0;
  return map;
}

function bytesOf(a: Float32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkAbort(signal?: AbortSignal): void {
  signal?.throwIfAborted();
}

/**
 * Writes one shard of a {@link BnbPlan} as a safetensors file (`__metadata__` `{"format": "pt"}`,
 * as `save_pretrained` writes it).
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { BnbWriter, planBnb } from "@quantx/bnb";
 * const w = new Float32Array(64 * 32).map((_, i) => Math.sin(i));
 * const tensors = [{ name: "model.layers.0.mlp.up_proj.weight", shape: [64, 32], dtype: "F32" }];
 * const source = {
 *   readF32: (_: string, start: number, count: number) => Promise.resolve(w.slice(start, start + count)),
 *   read: (_: string, offset: number, length: number) =>
 *     Promise.resolve(new Uint8Array(w.buffer).slice(offset, offset + length)),
 * };
 * const plan = planBnb(tensors, { quantType: "nf4", doubleQuant: true });
 * const sink = memorySink("model.safetensors");
 * const writer = new BnbWriter(sink, plan.shards[0], plan);
 * await writer.prepare(source);
 * await writer.write(source);
 * console.log(writer.entries.map((e) => e.name));
 * ```
 */
export class BnbWriter {
  /** Where the shard goes. */
  readonly sink: ByteSink;
  /** The shard. */
  readonly shard: BnbShard;
  /** The plan it belongs to. */
  readonly plan: BnbPlan;
  #entries?: SafetensorsEntry[];
  #offsets = new Map<BnbPlanItem, number>();
  #index: Map<BnbPlanItem, number>;

  constructor(sink: ByteSink, shard: BnbShard, plan: BnbPlan) {
    this.sink = sink;
    this.shard = shard;
    this.plan = plan;
    this.#index = new Map(plan.items.map((it, i) => [it, i]));
    if (!plan.options.doubleQuant) this.#entries = shard.items.flatMap((it) => it.outputs);
  }

  /** The shard's tensors with exact shapes (after {@link BnbWriter.prepare}). */
  get entries(): SafetensorsEntry[] {
    if (!this.#entries) throw new Error("BnbWriter: call prepare() first (double quantization)");
    return this.#entries;
  }

  /** Bytes of tensor data of the shard (after {@link BnbWriter.prepare}). */
  get dataLength(): number {
    return this.entries.reduce((s, e) => s + entryByteLength(e), 0);
  }

  /**
   * Computes what the header needs: with double quantization, each quantized weight's
   * `nested_offset` (one read of its data); otherwise nothing. Aborts the sink on error.
   */
  async prepare(
    source: BnbTensorSource,
    options: BnbWriteOptions = {},
  ): Promise<SafetensorsEntry[]> {
    if (this.#entries) return this.#entries;
    try {
      const bs = this.plan.options.blockSize;
      const entries: SafetensorsEntry[] = [];
      for (const it of this.shard.items) {
        if (!it.quantized || !it.state?.nested) {
          entries.push(...it.outputs);
          continue;
        }
        const n = elementCount(it.source.shape);
        let sum = 0, blocks = 0;
        await this.#chunks(source, it, options, "scan", (x) => {
          for (let s = 0; s < x.length; s += bs) {
            let m = 0;
            for (let i = s, e = Math.min(x.length, s + bs); i < e; i++) {
              const a = Math.abs(x[i]);
              if (a > m) m = a;
            }
            sum += Math.fround(m);
            blocks++;
          }
          return Promise.resolve();
        });
        if (blocks !== Math.ceil(n / bs)) {
          throw new Error(`bnb: ${it.source.name}: read ${blocks} blocks`);
        }
        const offset = blocks === 0 ? 0 : Math.fround(sum / blocks);
        this.#offsets.set(it, offset);
        const state = { ...it.state, nested: { ...it.state.nested, offset } };
        entries.push(...bnbOutputs(it.source.name, state));
      }
      this.#entries = entries;
      return entries;
    } catch (e) {
      await this.sink.abort().catch(() => {});
      throw e;
    }
  }

  /**
   * Writes the shard: header, then every tensor, then closes the sink. On any error (including
   * an abort) the sink is aborted and the error rethrown.
   */
  async write(source: BnbTensorSource, options: BnbWriteOptions = {}): Promise<void> {
    try {
      const entries = await this.prepare(source, options);
      const sw = new SafetensorsWriter(this.sink, entries, { format: "pt" });
      await sw.writeHeader();
      const progress = {
        done: options.bytesBefore ?? 0,
        total: options.bytesTotal ?? sw.dataLength,
      };
      for (const it of this.shard.items) {
        checkAbort(options.signal);
        if (it.quantized) await this.#writeQuantized(sw, source, it, options, progress);
        else await this.#writeCopy(sw, source, it, options, progress);
      }
      await sw.finish();
    } catch (e) {
      await this.sink.abort().catch(() => {});
      throw e;
    }
  }

  #emit(
    options: BnbWriteOptions,
    it: BnbPlanItem,
    phase: string,
    progress: { done: number; total: number },
  ): void {
    options.onProgress?.({
      phase,
      tensorIndex: this.#index.get(it) ?? 0,
      tensorCount: this.plan.items.length,
      tensorName: it.source.name,
      bytesDone: progress.done,
      bytesTotal: progress.total,
    });
  }

  /** Reads a tensor as float32 in whole-block chunks (next chunk prefetched) and calls `use`. */
  async #chunks(
    source: BnbTensorSource,
    it: BnbPlanItem,
    options: BnbWriteOptions,
    phase: string,
    use: (x: Float32Array, start: number) => Promise<void>,
  ): Promise<void> {
    const name = it.source.name;
    const n = elementCount(it.source.shape);
    const bs = this.plan.options.blockSize;
    const per = Math.max(bs, Math.floor((options.chunkValues ?? 1 << 22) / bs) * bs);
    const fetch = (start: number) => {
      const m = Math.min(per, n - start);
      return source.readF32(name, start, m).then((x) => {
        if (!(x instanceof Float32Array) || x.length !== m) {
          throw new Error(`bnb: reading ${name} [${start}, ${start + m}) gave ${x?.length} values`);
        }
        return { x, start };
      });
    };
    let next: ReturnType<typeof fetch> | undefined = n > 0 ? fetch(0) : undefined;
    try {
      while (next) {
        checkAbort(options.signal);
        const c = await next;
        const end = c.start + c.x.length;
        next = end < n ? fetch(end) : undefined;
        await use(c.x, c.start);
        if (phase === "scan") {
          options.onProgress?.({
            phase,
            tensorIndex: this.#index.get(it) ?? 0,
            tensorCount: this.plan.items.length,
            tensorName: name,
            bytesDone: options.bytesBefore ?? 0,
            bytesTotal: options.bytesTotal ?? 0,
          });
        }
      }
    } finally {
      next?.catch(() => {});
    }
  }

  async #writeQuantized(
    sw: SafetensorsWriter,
    source: BnbTensorSource,
    it: BnbPlanItem,
    options: BnbWriteOptions,
    progress: { done: number; total: number },
  ): Promise<void> {
    const state = it.state!;
    const bs = state.blockSize;
    const n = elementCount(it.source.shape);
    const absmax = new Float32Array(Math.ceil(n / bs));
    const quantize = state.quantType === "nf4" ? quantizeNf4 : quantizeFp4;
    const put = async (bytes: Uint8Array) => {
      await sw.write(bytes);
      progress.done += bytes.byteLength;
    };
    await this.#chunks(source, it, options, "quantize", async (x, start) => {
      const q = quantize(x, bs);
      options.onQuantized?.(it.source.name, x, q.codes, q.absmax);
      absmax.set(q.absmax, start / bs);
      await put(q.codes);
      this.#emit(options, it, "quantize", progress);
    });
    const map = bnbQuantMap(state.quantType);
    if (state.nested) {
      const dq = doubleQuantize(absmax, state.nested.blockSize);
      const planned = this.#offsets.get(it);
      if (!Object.is(dq.offset, planned)) {
        throw new Error(
          `bnb: ${it.source.name}: the data changed while being written (nested_offset ${dq.offset}, ` +
            `${planned} on the first read)`,
        );
      }
      await put(dq.quantized);
      await put(bytesOf(map));
      await put(bytesOf(dq.nestedAbsmax));
      await put(bytesOf(BNB_DYNAMIC_MAP.slice()));
      await put(quantStateBytes({ ...state, nested: { ...state.nested, offset: dq.offset } }));
    } else {
      await put(bytesOf(absmax));
      await put(bytesOf(map));
      await put(quantStateBytes(state));
    }
    this.#emit(options, it, "write", progress);
  }

  async #writeCopy(
    sw: SafetensorsWriter,
    source: BnbTensorSource,
    it: BnbPlanItem,
    options: BnbWriteOptions,
    progress: { done: number; total: number },
  ): Promise<void> {
    const total = it.byteLength;
    const per = 16 << 20;
    for (let off = 0; off < total; off += per) {
      checkAbort(options.signal);
      const len = Math.min(per, total - off);
      const bytes = await source.read(it.source.name, off, len);
      if (bytes.byteLength !== len) {
        throw new Error(
          `bnb: reading ${it.source.name} bytes [${off}, ${off + len}) gave ${bytes.byteLength}`,
        );
      }
      await sw.write(bytes);
      progress.done += len;
      this.#emit(options, it, "write", progress);
    }
    if (total === 0) this.#emit(options, it, "write", progress);
  }
}

/** Options of {@link writeBnbCheckpoint}. */
export interface BnbCheckpointOptions
  extends BnbOptions, Omit<BnbWriteOptions, "bytesBefore" | "bytesTotal"> {
  /** Replace existing files in the output folder (default: an existing file is an `EEXIST` error). */
  overwrite?: boolean;
  /** Write config.json (default: when the source has a config). */
  writeConfig?: boolean;
}

/** What {@link writeBnbCheckpoint} wrote. */
export interface BnbCheckpointResult {
  /** The plan that was carried out. */
  plan: BnbPlan;
  /** Paths written (shards, then the index when sharded, then config.json). */
  files: string[];
  /** Tensor name -> shard file name. */
  weightMap: Record<string, string>;
  /** Bytes of tensor data over all shards (the index's `total_size`). */
  totalSize: number;
}

/**
 * Converts a checkpoint into a bitsandbytes 4-bit Hugging Face checkpoint in `outDir` (created if
 * needed): the shards (`model.safetensors`, or `model-0000i-of-0000n.safetensors` plus
 * `model.safetensors.index.json`) and config.json with `quantization_config`. Tokenizer and other
 * side files are not copied. Every file is written atomically; on error or abort the files
 * written so far are removed.
 *
 * @example
 * ```ts ignore
 * import { openCheckpoint } from "@quantx/safetensors";
 * import { writeBnbCheckpoint } from "@quantx/bnb";
 * const ckpt = await openCheckpoint("models/SmolLM2-135M");
 * const result = await writeBnbCheckpoint(ckpt, "out/SmolLM2-135M-bnb-nf4", { quantType: "nf4", doubleQuant: true });
 * console.log(result.files);
 * await ckpt.close();
 * ```
 */
export async function writeBnbCheckpoint(
  source: BnbCheckpointSource,
  outDir: string,
  options: BnbCheckpointOptions = {},
): Promise<BnbCheckpointResult> {
  const plan = planBnb(source.tensors, options, source.config);
  await mkdir(outDir, { recursive: true });
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const bytesTotal = plan.shards.reduce((s, sh) => s + sh.dataLength, 0);
  try {
    for (const shard of plan.shards) {
      const path = join(outDir, shard.file);
      const sink = await createFileSink(path, {
        overwrite: options.overwrite,
        signal: options.signal,
      });
      const writer = new BnbWriter(sink, shard, plan);
      const wopts: BnbWriteOptions = {
        signal: options.signal,
        onProgress: options.onProgress,
        chunkValues: options.chunkValues,
        bytesBefore: totalSize,
        bytesTotal,
        onQuantized: options.onQuantized,
      };
      await writer.prepare(source, wopts);
      await writer.write(source, wopts);
      files.push(path);
      for (const e of writer.entries) weightMap[e.name] = shard.file;
      totalSize += writer.dataLength;
    }
    if (plan.shards.length > 1) {
      files.push(
        await writeShardedIndex(outDir, weightMap, totalSize, { overwrite: options.overwrite }),
      );
    }
    if (source.config && options.writeConfig !== false) {
      const path = join(outDir, "config.json");
      const sink = await createFileSink(path, {
        overwrite: options.overwrite,
        signal: options.signal,
      });
      try {
        await sink.write(new TextEncoder().encode(bnbConfigJson(source.config, plan)));
        await sink.close();
      } catch (e) {
        await sink.abort().catch(() => {});
        throw e;
      }
      files.push(path);
    }
  } catch (e) {
    await Promise.all(files.map((f) => rm(f, { force: true }).catch(() => {})));
    throw e;
  }
  return { plan, files, weightMap, totalSize };
}
