/**
 * safetensors writer. The header is computed from the list of tensors before any data, so data
 * streams straight to the sink in chunks of any size.
 *
 * Layout, as Hugging Face's `safetensors` writes it: u64 little-endian header length, compact JSON
 * (`__metadata__` first when given, then each tensor as
 * `{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`), padded with spaces to a multiple of 8
 * bytes, then the tensors' bytes back to back with no padding.
 *
 * Order: tensors are written in the order given, and `data_offsets` increase in that order. (The
 * reference writer instead sorts by dtype width, then by name; readers, including the reference
 * one, accept any order whose ranges are contiguous, so the given order is kept: it is the order a
 * streaming job produces data in.) `__metadata__` keys keep the object's own key order.
 * @module
 */
import { join } from "node:path";
import { type ByteSink, createFileSink, QuantxError } from "@quantx/core";
import { dtypeByteLength, isSafetensorsDtype } from "./dtypes.ts";
import { INDEX_FILE, WEIGHTS_FILE } from "./checkpoint.ts";
import { SAFETENSORS_MAX_HEADER } from "./read.ts";

/** A tensor to be written: name, dtype (upper case, as in the header) and row-major shape. */
export interface SafetensorsEntry {
  /** Name (any string but `__metadata__`). */
  name: string;
  /** A safetensors dtype (`F32`, `F16`, `BF16`, `U8`, ...). */
  dtype: string;
  /** Row-major shape; `[]` for a scalar. */
  shape: readonly number[];
}

/** A tensor with its bytes, for {@link writeSafetensors}. */
export interface SafetensorsDataEntry extends SafetensorsEntry {
  /** Little-endian element bytes, exactly the size shape and dtype call for. */
  data: Uint8Array;
}

/** The header of a file about to be written. */
export interface SafetensorsLayout {
  /** The first bytes of the file: u64 length plus the space-padded JSON. */
  header: Uint8Array;
  /** `data_offsets` of each entry, in the order given. */
  offsets: [number, number][];
  /** Bytes of tensor data. */
  dataLength: number;
}

function invalid(message: string): QuantxError {
  return new QuantxError(message, { code: "EINVAL" });
}

/** Bytes of data of one entry; throws a `QuantxError` (`EINVAL`) for a bad dtype or shape. */
export function entryByteLength(entry: SafetensorsEntry): number {
  const where = `tensor ${JSON.stringify(entry.name)}`;
  if (!isSafetensorsDtype(entry.dtype)) {
    throw invalid(`${where}: unknown safetensors dtype ${JSON.stringify(entry.dtype)}`);
  }
  let n = 1;
  for (const d of entry.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw invalid(`${where}: shape must hold non-negative integers, got [${entry.shape}]`);
    }
    n *= d;
  }
  const bytes = Number.isSafeInteger(n) ? dtypeByteLength(entry.dtype, n) : undefined;
  if (bytes === undefined) {
    throw invalid(`${where}: [${entry.shape}] of ${entry.dtype} is not a whole number of bytes`);
  }
  return bytes;
}

/**
 * Compute the header of a safetensors file (see the module doc for layout and order).
 * Throws a `QuantxError` (`EINVAL`) for a duplicate or reserved name, an unknown dtype, a bad
 * shape, a non-string metadata value or a header over 100 MB.
 *
 * @example
 * ```ts
 * import { safetensorsLayout } from "@quantx/safetensors";
 * const { header, dataLength } = safetensorsLayout([{ name: "x", dtype: "F16", shape: [3] }]);
 * console.log(header.byteLength, dataLength); // 64 6
 * ```
 */
export function safetensorsLayout(
  entries: readonly SafetensorsEntry[],
  metadata?: Record<string, string>,
): SafetensorsLayout {
  const parts: string[] = [];
  if (metadata !== undefined) {
    const items = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== "string") {
        throw invalid(`__metadata__ value of ${JSON.stringify(k)} must be a string`);
      }
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${items.join(",")}}`);
  }
  const names = new Set<string>();
  const offsets: [number, number][] = [];
  let offset = 0;
  for (const e of entries) {
    if (typeof e.name !== "string") throw invalid(`tensor name must be a string`);
    if (e.name === "__metadata__") throw invalid(`"__metadata__" cannot name a tensor`);
    if (names.has(e.name)) throw invalid(`duplicate tensor name ${JSON.stringify(e.name)}`);
    names.add(e.name);
    const n = entryByteLength(e);
    offsets.push([offset, offset + n]);
    parts.push(
      `${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(",")}],` +
        `"data_offsets":[${offset},${offset + n}]}`,
    );
    offset += n;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > SAFETENSORS_MAX_HEADER) {
    throw invalid(`header of ${padded} bytes is over the ${SAFETENSORS_MAX_HEADER}-byte limit`);
  }
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, offsets, dataLength: offset };
}

/**
 * Streaming safetensors writer: the header first, then the tensors' bytes in entry order, in
 * chunks of any size (a chunk may run from one tensor into the next).
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { fromF32, SafetensorsWriter } from "@quantx/safetensors";
 * const sink = memorySink();
 * const w = new SafetensorsWriter(sink, [{ name: "w", dtype: "BF16", shape: [2, 2] }], { format: "pt" });
 * await w.writeHeader();
 * await w.write(fromF32("BF16", new Float32Array([1, 2]))); // row 0
 * await w.write(fromF32("BF16", new Float32Array([3, 4]))); // row 1
 * await w.finish();
 * console.log(sink.bytes().byteLength); // 104
 * ```
 */
export class SafetensorsWriter {
  /** Where the file goes. */
  readonly sink: ByteSink;
  /** The tensors, in write order. */
  readonly entries: readonly SafetensorsEntry[];
  /** Header bytes (length + padded JSON). */
  readonly header: Uint8Array;
  /** `data_offsets` of each entry. */
  readonly offsets: readonly [number, number][];
  /** Bytes of tensor data expected. */
  readonly dataLength: number;
  #written = 0;
  #headerWritten = false;
  #finished = false;

  /**
   * Plan a file. Nothing is written yet. Throws a `QuantxError` (`EINVAL`) for bad entries (see
   * {@link safetensorsLayout}).
   */
  constructor(
    sink: ByteSink,
    entries: readonly SafetensorsEntry[],
    metadata?: Record<string, string>,
  ) {
    const layout = safetensorsLayout(entries, metadata);
    this.sink = sink;
    this.entries = entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: [...e.shape] }));
    this.header = layout.header;
    this.offsets = layout.offsets;
    this.dataLength = layout.dataLength;
  }

  /** Size of the whole file in bytes. */
  get byteLength(): number {
    return this.header.byteLength + this.dataLength;
  }

  /** Bytes of tensor data written so far. */
  get written(): number {
    return this.#written;
  }

  /** Write the header (done by the first {@link write} if not called). */
  async writeHeader(): Promise<void> {
    if (this.#headerWritten) throw invalid(`${this.sink.name}: header already written`);
    this.#headerWritten = true;
    await this.sink.write(this.header);
  }

  /**
   * Append tensor bytes. Throws a `QuantxError` (`EINVAL`) if they run past the data declared by
   * the entries, or after {@link finish}.
   */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#finished) throw invalid(`${this.sink.name}: write after finish`);
    if (this.#written + bytes.byteLength > this.dataLength) {
      throw invalid(
        `${this.sink.name}: ${
          this.#written + bytes.byteLength - this.dataLength
        } bytes more than the ${this.dataLength} bytes of tensor data declared`,
      );
    }
    if (!this.#headerWritten) await this.writeHeader();
    if (bytes.byteLength === 0) return;
    this.#written += bytes.byteLength;
    await this.sink.write(bytes);
  }

  /**
   * Check that every tensor got all its bytes, then close the sink (for a file sink: fsync and
   * rename into place). Throws a `QuantxError` (`EINVAL`) naming the first incomplete tensor; the
   * sink is then left open for the caller to abort.
   */
  async finish(): Promise<void> {
    if (this.#finished) throw invalid(`${this.sink.name}: finish called twice`);
    if (!this.#headerWritten) await this.writeHeader();
    if (this.#written !== this.dataLength) {
      const i = this.offsets.findIndex(([, end]) => end > this.#written);
      const [begin, end] = this.offsets[i];
      throw invalid(
        `${this.sink.name}: tensor ${JSON.stringify(this.entries[i].name)} got ${
          this.#written - begin
        } of its ${end - begin} bytes`,
      );
    }
    this.#finished = true;
    await this.sink.close();
  }
}

/**
 * Write a whole safetensors file from tensors in memory and close the sink; on any error the
 * sink is aborted (a file sink removes its partial file). Returns the file size.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { fromF32, writeSafetensors } from "@quantx/safetensors";
 * const sink = memorySink();
 * const size = await writeSafetensors(sink, [
 *   { name: "bias", dtype: "F32", shape: [2], data: fromF32("F32", new Float32Array([0.5, -1])) },
 * ]);
 * console.log(size); // 80
 * ```
 */
export async function writeSafetensors(
  sink: ByteSink,
  entries: readonly SafetensorsDataEntry[],
  metadata?: Record<string, string>,
): Promise<number> {
  try {
    const writer = new SafetensorsWriter(sink, entries, metadata);
    entries.forEach((e, i) => {
      const [begin, end] = writer.offsets[i];
      if (e.data.byteLength !== end - begin) {
        throw invalid(
          `tensor ${
            JSON.stringify(e.name)
          }: ${e.data.byteLength} bytes of data, but [${e.shape}] ` +
            `of ${e.dtype} needs ${end - begin}`,
        );
      }
    });
    await writer.writeHeader();
    for (const e of entries) await writer.write(e.data);
    await writer.finish();
    return writer.byteLength;
  } catch (e) {
    await sink.abort().catch(() => {});
    throw e;
  }
}

/** `model-00001-of-00003.safetensors`: the shard names `save_pretrained` uses (1-based). */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `model-${pad(index)}-of-${pad(count)}.safetensors`;
}

/** One shard of a plan made by {@link planShards}. */
export interface ShardPlan<T extends SafetensorsEntry = SafetensorsEntry> {
  /** File name (`model.safetensors` when there is only one shard). */
  file: string;
  /** The tensors it holds, in order. */
  entries: T[];
  /** Bytes of tensor data it holds. */
  dataLength: number;
}

/**
 * Split tensors into shards of at most `maxShardBytes` of data each, as transformers does: in
 * order, a new shard whenever the next tensor would overflow the current one; a tensor larger
 * than the limit gets a shard of its own. One shard is named `model.safetensors`, several
 * `model-0000i-of-0000n.safetensors`.
 */
export function planShards<T extends SafetensorsEntry>(
  entries: readonly T[],
  maxShardBytes: number,
): ShardPlan<T>[] {
  const shards: { entries: T[]; dataLength: number }[] = [];
  let current: { entries: T[]; dataLength: number } | undefined;
  for (const e of entries) {
    const n = entryByteLength(e);
    if (!current || (current.entries.length > 0 && current.dataLength + n > maxShardBytes)) {
      current = { entries: [], dataLength: 0 };
      shards.push(current);
    }
    current.entries.push(e);
    current.dataLength += n;
  }
  return shards.map((s, i) => ({
    file: shards.length === 1 ? WEIGHTS_FILE : shardFileName(i + 1, shards.length),
    ...s,
  }));
}

function compareCodePoints(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Python's `json.dumps(value, indent=2, sort_keys=True)` for plain JSON values. */
function pythonJson(value: unknown, indent: string): string {
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + pythonJson(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort(compareCodePoints);
    if (keys.length === 0) return "{}";
    const rec = value as Record<string, unknown>;
    return `{\n${
      keys.map((k) => `${inner}${pythonString(k)}: ${pythonJson(rec[k], inner)}`).join(",\n")
    }\n${indent}}`;
  }
  if (typeof value === "string") return pythonString(value);
  if (typeof value === "number" && !Number.isFinite(value)) {
    return Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  }
  return JSON.stringify(value) ?? "null";
}

function pythonString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The text of a `model.safetensors.index.json` as transformers writes it
 * (`json.dumps(index, indent=2, sort_keys=True) + "\n"`): `metadata.total_size` (plus any extra
 * metadata) and `weight_map` from tensor name to shard file, keys sorted.
 *
 * @example
 * ```ts
 * import { safetensorsIndexJson } from "@quantx/safetensors";
 * console.log(safetensorsIndexJson({ "b": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors" }, 64));
 * ```
 */
export function safetensorsIndexJson(
  weightMap: Record<string, string> | ReadonlyMap<string, string>,
  totalSize: number,
  metadata: Record<string, unknown> = {},
): string {
  const map = weightMap instanceof Map
    ? Object.fromEntries(weightMap)
    : weightMap as Record<string, string>;
  const index = { metadata: { ...metadata, total_size: totalSize }, weight_map: map };
  return pythonJson(index, "") + "\n";
}

/** Options of {@link writeShardedIndex}. */
export interface WriteIndexOptions {
  /** File name inside `dir` (default `model.safetensors.index.json`). */
  name?: string;
  /** Extra `metadata` entries (e.g. `total_parameters`). */
  metadata?: Record<string, unknown>;
  /** Replace an existing file (default false: an existing file is an `EEXIST` error). */
  overwrite?: boolean;
}

/**
 * Write `dir/model.safetensors.index.json` (atomically, through a file sink) for shards written
 * with {@link SafetensorsWriter}. `totalSize` is the sum of the tensors' data bytes, as
 * transformers records it. Returns the path written.
 *
 * @example
 * ```ts ignore
 * import { writeShardedIndex } from "@quantx/safetensors";
 * await writeShardedIndex("out", { "a.weight": "model-00001-of-00002.safetensors" }, 4096);
 * ```
 */
export async function writeShardedIndex(
  dir: string,
  weightMap: Record<string, string> | ReadonlyMap<string, string>,
  totalSize: number,
  options: WriteIndexOptions = {},
): Promise<string> {
  const path = join(dir, options.name ?? INDEX_FILE);
  const sink = await createFileSink(path, { overwrite: options.overwrite === true });
  try {
    await sink.write(
      new TextEncoder().encode(safetensorsIndexJson(weightMap, totalSize, options.metadata)),
    );
    await sink.close();
  } catch (e) {
    await sink.abort().catch(() => {});
    throw e;
  }
  return path;
}
