/**
 * GGUF v3 writer (little-endian), streaming: the header, metadata and tensor infos are computed from
 * the plan (keys and tensor shapes/types) and written first, then tensor data in order, each tensor
 * padded with zeros to the alignment (the last one too), exactly as llama.cpp's `gguf_write` lays
 * a file out.
 * @module
 */
import type { ByteSink, FileRange } from "@quantx/core";
import { ggmlType } from "@quantx/kernels";
import {
  type GgufItem,
  type GgufValue,
  ggufValue,
  GgufValueType,
  ggufValueTypeName,
} from "./metadata.ts";
import {
  ggmlTypeLayout,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAX_DIMS,
  type GgufTensor,
  padTo,
  tensorByteLength,
} from "./read.ts";

/** Options of {@link GgufWriter}. */
export interface GgufWriterOptions {
  /**
   * Tensor data alignment, a power of two (default 32). A non-default value is written as
   * `general.alignment` (u32).
   */
  alignment?: number;
}

/** The GGUF version the writer produces. */
export const GGUF_WRITE_VERSION = 3;
/** llama.cpp keeps tensor names in 64-byte buffers (GGML_MAX_NAME) with a terminating NUL. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;

const FLUSH = 1 << 20;
const utf8 = new TextEncoder();
const INT64_MAX = 0x7fffffffffffffffn;

/** Little-endian encoder that hands full chunks to a sink. */
class Encoder {
  buf = new Uint8Array(64 * 1024);
  view = new DataView(this.buf.buffer);
  len = 0;
  total = 0;
  constructor(readonly sink: ByteSink) {}

  private room(n: number): number {
    if (this.len + n > this.buf.byteLength) {
      let cap = this.buf.byteLength * 2;
      while (cap < this.len + n) cap *= 2;
      const b = new Uint8Array(cap);
      b.set(this.buf.subarray(0, this.len));
      this.buf = b;
      this.view = new DataView(b.buffer);
    }
    const o = this.len;
    this.len += n;
    this.total += n;
    return o;
  }

  async maybeFlush(): Promise<void> {
    if (this.len >= FLUSH) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.len === 0) return;
    await this.sink.write(this.buf.subarray(0, this.len));
    this.len = 0;
  }

  u8(v: number): void {
    const o = this.room(1);
    this.buf[o] = v;
  }
  i8(v: number): void {
    const o = this.room(1);
    this.view.setInt8(o, v);
  }
  u16(v: number): void {
    const o = this.room(2);
    this.view.setUint16(o, v, true);
  }
  i16(v: number): void {
    const o = this.room(2);
    this.view.setInt16(o, v, true);
  }
  u32(v: number): void {
    const o = this.room(4);
    this.view.setUint32(o, v, true);
  }
  i32(v: number): void {
    const o = this.room(4);
    this.view.setInt32(o, v, true);
  }
  f32(v: number): void {
    const o = this.room(4);
    this.view.setFloat32(o, v, true);
  }
  f64(v: number): void {
    const o = this.room(8);
    this.view.setFloat64(o, v, true);
  }
  u64(v: bigint | number): void {
    const o = this.room(8);
    this.view.setBigUint64(o, BigInt(v), true);
  }
  i64(v: bigint | number): void {
    const o = this.room(8);
    this.view.setBigInt64(o, BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    const o = this.room(b.byteLength);
    this.buf.set(b, o);
  }
  string(s: string): void {
    // At most 3 bytes per UTF-16 unit; encode in place, then write the real length before it.
    const at = this.room(8 + 3 * s.length);
    const { written } = utf8.encodeInto(s, this.buf.subarray(at + 8));
    this.view.setBigUint64(at, BigInt(written), true);
    this.len -= 3 * s.length - written;
    this.total -= 3 * s.length - written;
  }
  zeros(n: number): void {
    const o = this.room(n);
    this.buf.fill(0, o, this.len);
  }
}

async function encodeItems(e: Encoder, type: GgufValueType, items: GgufItem[]): Promise<void> {
  for (const v of items) {
    switch (type) {
      case GgufValueType.UINT8:
        e.u8(v as number);
        break;
      case GgufValueType.INT8:
        e.i8(v as number);
        break;
      case GgufValueType.UINT16:
        e.u16(v as number);
        break;
      case GgufValueType.INT16:
        e.i16(v as number);
        break;
      case GgufValueType.UINT32:
        e.u32(v as number);
        break;
      case GgufValueType.INT32:
        e.i32(v as number);
        break;
      case GgufValueType.FLOAT32:
        e.f32(v as number);
        break;
      case GgufValueType.FLOAT64:
        e.f64(v as number);
        break;
      case GgufValueType.UINT64:
        e.u64(v as bigint);
        break;
      case GgufValueType.INT64:
        e.i64(v as bigint);
        break;
      case GgufValueType.BOOL:
        e.u8(v ? 1 : 0);
        break;
      case GgufValueType.STRING:
        e.string(v as string);
        if (e.len >= FLUSH) await e.flush();
        break;
      case GgufValueType.ARRAY: {
        const a = v as { itemType: GgufValueType; value: GgufItem[] };
        e.u32(a.itemType);
        e.u64(a.value.length);
        await encodeItems(e, a.itemType, a.value);
        break;
      }
    }
  }
  await e.maybeFlush();
}

async function encodeValue(e: Encoder, v: GgufValue): Promise<void> {
  e.u32(v.type);
  if (v.type === GgufValueType.ARRAY) {
    e.u32(v.itemType);
    e.u64(v.value.length);
    await encodeItems(e, v.itemType, v.value);
  } else {
    await encodeItems(e, v.type, [v.value]);
  }
}

/** A tensor as the writer lays it out. */
export interface GgufPlannedTensor extends GgufTensor {
  /** Bytes of data still expected for this tensor. */
  remaining: number;
}

/**
 * Streaming GGUF v3 writer. Declare metadata with {@link GgufWriter.set} and tensors with
 * {@link GgufWriter.addTensor}, call {@link GgufWriter.writeHeader}, then pass every tensor's bytes
 * in declaration order to {@link GgufWriter.writeTensorData} (any number of chunks per tensor; a
 * chunk never spans two tensors), then {@link GgufWriter.finish}, which closes the sink.
 * `general.architecture`, when set, is written first.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { GgufValueType, GgufWriter } from "@quantx/gguf";
 * const sink = memorySink("tiny.gguf");
 * const w = new GgufWriter(sink);
 * w.set("general.architecture", GgufValueType.STRING, "llama");
 * w.addTensor("weight", [4, 2], 0); // 2 rows of 4 f32
 * await w.writeHeader();
 * await w.writeTensorData(new Uint8Array(new Float32Array(8).buffer));
 * await w.finish();
 * console.log(sink.bytes().byteLength); // 160: 128 bytes of header, 32 of data
 * ```
 */
export class GgufWriter {
  /** Tensor data alignment. */
  readonly alignment: number;
  #sink: ByteSink;
  #kv = new Map<string, GgufValue>();
  #tensors: GgufPlannedTensor[] = [];
  #names = new Set<string>();
  #state: "plan" | "data" | "busy" | "done" | "failed" = "plan";
  #current = 0;
  #dataOffset = -1;

  constructor(sink: ByteSink, options: GgufWriterOptions = {}) {
    const a = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isInteger(a) || a <= 0 || a > 0xffffffff || (a & (a - 1)) !== 0) {
      throw new RangeError(`GGUF alignment must be a power of 2 (u32), got ${a}`);
    }
    this.#sink = sink;
    this.alignment = a;
  }

  /** Tensors added so far, with their layout (offset relative to the data section). */
  get tensors(): readonly GgufTensor[] {
    return this.#tensors;
  }

  /** Absolute offset of the data section; known after {@link GgufWriter.writeHeader}. */
  get dataOffset(): number {
    if (this.#dataOffset < 0) {
      throw new Error("GgufWriter: dataOffset is known after writeHeader()");
    }
    return this.#dataOffset;
  }

  /** Size the finished file will have; known after {@link GgufWriter.writeHeader}. */
  get fileSize(): number {
    return this.dataOffset + this.#dataSize();
  }

  #dataSize(): number {
    return this.#tensors.reduce((s, t) => s + padTo(t.byteLength, this.alignment), 0);
  }

  #planning(what: string): void {
    if (this.#state !== "plan") {
      throw new Error(`GgufWriter: ${what} must come before writeHeader()`);
    }
  }

  /**
   * Set metadata `key` to `value` of GGUF type `type` (see `ggufValue` for the accepted values;
   * an ARRAY takes `{ itemType, value: [...] }`), or to a typed {@link GgufValue}. Setting a key
   * again replaces its value in place. `general.alignment` must be the writer's alignment, as u32.
   */
  set(key: string, type: GgufValueType, value: unknown): this;
  /** Set metadata `key` to a typed value (as `openGguf` returns them). */
  set(key: string, value: GgufValue): this;
  set(key: string, typeOrValue: GgufValueType | GgufValue, value?: unknown): this {
    this.#planning("set()");
    if (typeof key !== "string" || key.length === 0) {
      throw new TypeError("GgufWriter: metadata keys must be non-empty strings");
    }
    if (utf8.encode(key).byteLength > 0xffff) {
      throw new RangeError(`GgufWriter: key '${key.slice(0, 40)}...' is longer than 65535 bytes`);
    }
    let v: GgufValue;
    if (typeof typeOrValue === "object" && typeOrValue !== null) {
      const g = typeOrValue as GgufValue;
      v = ggufValue(g.type, g.type === GgufValueType.ARRAY ? g : g.value, key);
    } else {
      v = ggufValue(typeOrValue, value, key);
    }
    if (key === "general.alignment") {
      if (v.type !== GgufValueType.UINT32 || v.value !== this.alignment) {
        throw new RangeError(
          `GgufWriter: general.alignment must be u32 ${this.alignment} (the writer's alignment), ` +
            `got ${ggufValueTypeName(v.type)} ${
              String(v.value)
            }; pass { alignment } to the constructor`,
        );
      }
    }
    this.#kv.set(key, v);
    return this;
  }

  /**
   * Declare the next tensor: `shape` in ggml `ne` order (row length first), `type` a ggml type id
   * or name. Returns its layout; the byte length comes from the kernels' type registry.
   */
  addTensor(name: string, shape: readonly number[], type: number | string): GgufTensor {
    this.#planning("addTensor()");
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError("GgufWriter: tensor names must be non-empty strings");
    }
    if (utf8.encode(name).byteLength > GGUF_MAX_TENSOR_NAME_BYTES) {
      throw new RangeError(
        `GgufWriter: tensor name '${name}' is longer than ${GGUF_MAX_TENSOR_NAME_BYTES} bytes (llama.cpp's limit)`,
      );
    }
    if (this.#names.has(name)) throw new Error(`GgufWriter: duplicate tensor name '${name}'`);
    if (!Array.isArray(shape) || shape.length > GGUF_MAX_DIMS) {
      throw new RangeError(`GgufWriter: tensor '${name}' needs 0 to ${GGUF_MAX_DIMS} dimensions`);
    }
    let count = 1n;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new RangeError(`GgufWriter: tensor '${name}' has invalid dimension ${d}`);
      }
      count *= BigInt(d);
    }
    if (count > INT64_MAX) throw new RangeError(`GgufWriter: tensor '${name}' is too large`);
    const id = typeof type === "string" ? typeIdOf(type) : type;
    const layout = id === undefined ? undefined : ggmlTypeLayout(id);
    if (id === undefined || !layout) {
      throw new RangeError(`GgufWriter: tensor '${name}' has unknown ggml type ${type}`);
    }
    const ne0 = shape.length > 0 ? shape[0] : 1;
    if (ne0 % layout.blockSize !== 0) {
      throw new RangeError(
        `GgufWriter: tensor '${name}' row length ${ne0} is not a multiple of ${layout.name}'s block size ${layout.blockSize}`,
      );
    }
    const byteLength = tensorByteLength(shape, layout);
    if (!Number.isSafeInteger(byteLength)) {
      throw new RangeError(`GgufWriter: tensor '${name}' is too large`);
    }
    const last = this.#tensors.at(-1);
    const t: GgufPlannedTensor = {
      name,
      shape: [...shape],
      type: id,
      typeName: layout.name,
      dtype: layout.name,
      offset: last ? last.offset + padTo(last.byteLength, this.alignment) : 0,
      byteLength,
      remaining: byteLength,
    };
    this.#tensors.push(t);
    this.#names.add(name);
    return t;
  }

  /** Write the header, metadata and tensor infos, padded to the alignment. */
  async writeHeader(): Promise<void> {
    this.#planning("writeHeader()");
    this.#state = "busy";
    try {
      const kv = [...this.#kv];
      const arch = kv.findIndex(([k]) => k === "general.architecture");
      if (arch > 0) kv.unshift(...kv.splice(arch, 1));
      if (this.alignment !== GGUF_DEFAULT_ALIGNMENT && !this.#kv.has("general.alignment")) {
        kv.push(["general.alignment", { type: GgufValueType.UINT32, value: this.alignment }]);
      }
      const e = new Encoder(this.#sink);
      e.bytes(new Uint8Array([0x47, 0x47, 0x55, 0x46]));
      e.u32(GGUF_WRITE_VERSION);
      e.i64(this.#tensors.length);
      e.i64(kv.length);
      for (const [key, v] of kv) {
        e.string(key);
        await encodeValue(e, v);
      }
      for (const t of this.#tensors) {
        e.string(t.name);
        e.u32(t.shape.length);
        for (const d of t.shape) e.i64(d);
        e.i32(t.type);
        e.u64(t.offset);
        await e.maybeFlush();
      }
      e.zeros(padTo(e.total, this.alignment) - e.total);
      await e.flush();
      this.#dataOffset = e.total;
      this.#state = "data";
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
  }

  /** Write padding after every complete tensor at the cursor (zero-length tensors included). */
  async #advance(): Promise<void> {
    while (this.#current < this.#tensors.length && this.#tensors[this.#current].remaining === 0) {
      const t = this.#tensors[this.#current];
      const pad = padTo(t.byteLength, this.alignment) - t.byteLength;
      if (pad > 0) await this.#sink.write(new Uint8Array(pad));
      this.#current++;
    }
  }

  /**
   * Write the next `bytes` of tensor data. Chunks go in tensor declaration order and never span
   * two tensors; padding is written as soon as a tensor is complete. With `name`, the chunk must
   * belong to that tensor. Throws (writing nothing) on data out of order or too long.
   */
  async writeTensorData(bytes: Uint8Array, name?: string): Promise<void> {
    await this.#next(bytes.byteLength, name, () => this.#sink.write(bytes));
  }

  /** True when the sink can hand out ranges for {@link GgufWriter.reserveTensorData}. */
  get canReserve(): boolean {
    return typeof this.#sink.reserve === "function";
  }

  /**
   * Like {@link GgufWriter.writeTensorData}, but the next `length` bytes of tensor data are
   * written by the caller (for example by worker threads, in parallel) at the returned range of
   * the output file, before {@link GgufWriter.finish}. Same order rules; padding is still written
   * here. Needs a sink with `reserve` (file sinks; see {@link GgufWriter.canReserve}).
   */
  async reserveTensorData(length: number, name?: string): Promise<FileRange> {
    if (!this.#sink.reserve) {
      throw new Error("GgufWriter: the sink cannot reserve ranges (file sinks can)");
    }
    let range: FileRange | undefined;
    await this.#next(length, name, () => {
      range = this.#sink.reserve!(length);
      return Promise.resolve();
    });
    return range ?? this.#sink.reserve(0); // an empty chunk reserves nothing
  }

  /** Place the next `length` bytes of tensor data through `emit` (see writeTensorData). */
  async #next(length: number, name: string | undefined, emit: () => Promise<void>): Promise<void> {
    if (this.#state === "plan") {
      throw new Error("GgufWriter: call writeHeader() before tensor data");
    }
    if (this.#state === "busy") {
      throw new Error("GgufWriter: await each write before starting the next");
    }
    if (this.#state !== "data") throw new Error(`GgufWriter: writer is ${this.#state}`);
    this.#state = "busy";
    let t: GgufPlannedTensor | undefined;
    try {
      await this.#advance();
      t = this.#tensors[this.#current];
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
    if (length === 0) {
      // Empty chunks are no-ops, also for a (named) zero-length tensor already passed.
      const i = name === undefined ? -1 : this.#tensors.findIndex((x) => x.name === name);
      if (name === undefined || (i >= 0 && i < this.#current)) {
        this.#state = "data";
        return;
      }
    }
    const refusal = !t
      ? `got ${length} bytes${name ? ` for '${name}'` : ""} but all tensor data has been written`
      : name !== undefined && name !== t.name
      ? `got data for tensor '${name}' but tensor ${this.#current} '${t.name}' comes next (${t.remaining} of ${t.byteLength} bytes missing)`
      : length > t.remaining
      ? `a chunk of ${length} bytes is longer than the ${t.remaining} bytes left of tensor '${t.name}' (${t.byteLength} bytes, ${t.typeName} ${
        t.shape.join("x")
      })`
      : undefined;
    if (refusal || !t) {
      this.#state = "data";
      throw new Error(`GgufWriter: ${refusal}`);
    }
    try {
      await emit();
      t.remaining -= length;
      await this.#advance();
      this.#state = "data";
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
  }

  /**
   * Check that every tensor's data was written, then close the sink. Writes the header first if
   * that has not happened (a file without tensor data). On missing data the sink is aborted.
   */
  async finish(): Promise<void> {
    if (this.#state === "plan") await this.writeHeader();
    if (this.#state !== "data") {
      throw new Error(`GgufWriter: cannot finish, writer is ${this.#state}`);
    }
    this.#state = "busy";
    try {
      await this.#advance();
      const t = this.#tensors[this.#current];
      if (t) {
        throw new Error(
          `GgufWriter: tensor '${t.name}' has ${
            t.byteLength - t.remaining
          } of ${t.byteLength} bytes written` +
            (this.#current + 1 < this.#tensors.length
              ? ` and ${this.#tensors.length - this.#current - 1} tensors after it have none`
              : ""),
        );
      }
      await this.#sink.close();
      this.#state = "done";
    } catch (err) {
      this.#state = "failed";
      await this.#sink.abort();
      throw err;
    }
  }
}

function typeIdOf(name: string): number | undefined {
  for (const n of [name, name.toLowerCase()]) {
    try {
      const id = ggmlType(n)?.id;
      if (typeof id === "number") return id;
    } catch {
      // not a known name
    }
  }
  return undefined;
}

/** One tensor for {@link writeGguf}. */
export interface GgufTensorData {
  /** Tensor name. */
  name: string;
  /** Shape in ggml `ne` order (row length first). */
  shape: readonly number[];
  /** ggml type id or name. */
  type: number | string;
  /** The tensor's bytes, exactly its byte length. */
  data: Uint8Array;
}

/** Contents of a small GGUF file for {@link writeGguf}. */
export interface GgufContents {
  /** Metadata: a Map (e.g. `openGguf(...).metadata`), an object or `[key, value]` pairs. */
  metadata?:
    | Map<string, GgufValue>
    | Record<string, GgufValue>
    | Iterable<readonly [string, GgufValue]>;
  /** Tensors in file order. */
  tensors?: GgufTensorData[];
  /** Data alignment (default 32). */
  alignment?: number;
}

/**
 * Write a whole GGUF file from values in memory and close the sink: a convenience for small files
 * and tests (use {@link GgufWriter} to stream large ones).
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { GgufValueType, openGguf, writeGguf } from "@quantx/gguf";
 * import { bytesSource } from "@quantx/core";
 * const sink = memorySink("small.gguf");
 * await writeGguf(sink, {
 *   metadata: { "general.architecture": { type: GgufValueType.STRING, value: "llama" } },
 *   tensors: [{ name: "t", shape: [2], type: "f32", data: new Uint8Array(8) }],
 * });
 * const file = await openGguf(bytesSource(sink.bytes(), "small.gguf"));
 * console.log(file.tensors[0].byteLength); // 8
 * ```
 */
export async function writeGguf(sink: ByteSink, contents: GgufContents): Promise<void> {
  const w = new GgufWriter(sink, { alignment: contents.alignment });
  const md = contents.metadata ?? [];
  const entries = md instanceof Map || Symbol.iterator in md
    ? [...(md as Iterable<readonly [string, GgufValue]>)]
    : Object.entries(md);
  for (const [k, v] of entries) w.set(k, v);
  const tensors = contents.tensors ?? [];
  for (const t of tensors) {
    const info = w.addTensor(t.name, t.shape, t.type);
    if (t.data.byteLength !== info.byteLength) {
      throw new RangeError(
        `writeGguf: tensor '${t.name}' has ${t.data.byteLength} bytes of data, expected ${info.byteLength}`,
      );
    }
  }
  try {
    await w.writeHeader();
    for (const t of tensors) await w.writeTensorData(t.data, t.name);
  } catch (err) {
    await sink.abort();
    throw err;
  }
  await w.finish();
}
