/**
 * GGUF reader: v2 and v3, either byte order. Parses the header, typed metadata and tensor infos
 * with every check llama.cpp's `gguf.cpp` applies, then reads tensor data lazily.
 *
 * Every length in the file (strings, array counts, tensor counts) is compared with the bytes left
 * before anything is allocated, and every problem is a {@link FormatError} naming the file and the
 * byte offset.
 * @module
 */
import { type ByteSource, FormatError, parseSource, type TensorInfo } from "@quantx/core";
import { ggmlType } from "@quantx/kernels";
import {
  type GgufArrayValue,
  type GgufItem,
  type GgufMetadata,
  type GgufValue,
  GgufValueType,
  ggufValueTypeName,
  isGgufValueType,
  MAX_ARRAY_DEPTH,
} from "./metadata.ts";

/** Alignment of tensor data when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** GGUF versions this package reads. */
export const GGUF_READ_VERSIONS: readonly number[] = [2, 3];
/** Most dimensions a tensor may have (ggml's GGML_MAX_DIMS). */
export const GGUF_MAX_DIMS = 4;
/** llama.cpp refuses strings longer than this (1 GiB). */
export const GGUF_MAX_STRING_LENGTH = 1024 * 1024 * 1024;
/** llama.cpp refuses arrays with more items than this. */
export const GGUF_MAX_ARRAY_ELEMENTS = 1024 * 1024 * 1024;

/** One tensor as a GGUF file describes it. */
export interface GgufTensor extends TensorInfo {
  /** Dimensions in ggml `ne` order: `shape[0]` is the row length (a PyTorch shape reversed). */
  shape: number[];
  /** ggml type id. */
  type: number;
  /** ggml type name from the kernels registry (`f32`, `q4_k`, ...). */
  typeName: string;
  /** Same as `typeName`. */
  dtype: string;
  /** Offset of the data relative to the start of the data section. */
  offset: number;
  /** Bytes of data (without the padding that follows it). */
  byteLength: number;
}

/** An open GGUF file: header, metadata and tensor infos parsed; tensor data read on demand. */
export interface GgufFile {
  /** The source's name (path, URL or label). */
  readonly name: string;
  /** File size in bytes. */
  readonly size: number;
  /** GGUF version (2 or 3). */
  readonly version: number;
  /** False for a byte-swapped (big-endian) file; numbers in the header were swapped on reading. */
  readonly littleEndian: boolean;
  /** Tensor data alignment (`general.alignment`, default 32). */
  readonly alignment: number;
  /** Typed metadata in file order. */
  readonly metadata: GgufMetadata;
  /** Tensor infos in file order. */
  readonly tensors: GgufTensor[];
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  /** Absolute offset where the tensor infos end (before the padding to the data section). */
  readonly infoEnd: number;
  /** Things that are readable but unusual (for example strings that are not valid UTF-8). */
  readonly warnings: string[];
  /** The tensor named `name`, if any. */
  tensor(name: string): GgufTensor | undefined;
  /**
   * Read `byteLength` bytes (default: to the end of the tensor) starting `byteOffset` bytes into a
   * tensor's data. Bytes are returned as stored (a big-endian file's data is not swapped). The
   * result may be a view into a buffer shared with the source; copy it before mutating.
   */
  read(tensor: GgufTensor | string, byteOffset?: number, byteLength?: number): Promise<Uint8Array>;
  /** Close the underlying source. */
  close(): Promise<void>;
}

/** Round `n` up to a multiple of `alignment`. */
export function padTo(n: number, alignment: number): number {
  const r = n % alignment;
  return r === 0 ? n : n + alignment - r;
}

/** Block size, bytes per block and name of a ggml type id, or undefined for an unknown or removed id. */
export function ggmlTypeLayout(
  id: number,
): { name: string; blockSize: number; typeSize: number } | undefined {
  try {
    const t = ggmlType(id);
    if (!t || !(t.blockSize > 0) || !(t.typeSize > 0)) return undefined;
    return { name: t.name, blockSize: t.blockSize, typeSize: t.typeSize };
  } catch {
    return undefined;
  }
}

/** Bytes of a tensor of ggml type layout `t` with `ne` shape (ne[0] must be whole blocks). */
export function tensorByteLength(
  shape: readonly number[],
  t: { blockSize: number; typeSize: number },
): number {
  let n = shape.length === 0 ? t.typeSize : (shape[0] / t.blockSize) * t.typeSize;
  for (let i = 1; i < shape.length; i++) n *= shape[i];
  return n;
}

const CHUNK = 1 << 20;
const utf8Fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Lenient = new TextDecoder("utf-8", { ignoreBOM: true });
const INT64_MAX = 0x7fffffffffffffffn;

/** Sequential, buffered reading of a ByteSource with bounds checks. */
class Cursor {
  buf: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(new ArrayBuffer(0));
  start = 0;
  pos = 0;
  le = true;
  constructor(readonly src: ByteSource, readonly warnings: string[]) {}

  get left(): number {
    return this.src.size - this.pos;
  }

  error(reason: string, offset = this.pos): FormatError {
    return new FormatError(reason, { file: this.src.name, offset });
  }

  has(n: number): boolean {
    return this.pos + n <= this.start + this.buf.byteLength;
  }

  async fill(n: number, what: string): Promise<void> {
    if (n > this.left) {
      throw this.error(`${what}: needs ${n} bytes but the file has ${this.left} left`);
    }
    const len = Math.min(this.left, Math.max(n, CHUNK));
    const bytes = await this.src.read(this.pos, len);
    if (bytes.byteLength < len) throw this.error(`${what}: short read from the source`);
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.start = this.pos;
  }

  async ensure(n: number, what: string): Promise<void> {
    if (!this.has(n)) await this.fill(n, what);
  }

  private at(n: number): number {
    const o = this.pos - this.start;
    this.pos += n;
    return o;
  }

  u8(): number {
    return this.buf[this.at(1)];
  }
  i8(): number {
    return this.view.getInt8(this.at(1));
  }
  u16(): number {
    return this.view.getUint16(this.at(2), this.le);
  }
  i16(): number {
    return this.view.getInt16(this.at(2), this.le);
  }
  u32(): number {
    return this.view.getUint32(this.at(4), this.le);
  }
  i32(): number {
    return this.view.getInt32(this.at(4), this.le);
  }
  f32(): number {
    return this.view.getFloat32(this.at(4), this.le);
  }
  f64(): number {
    return this.view.getFloat64(this.at(8), this.le);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.at(8), this.le);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.at(8), this.le);
  }
  bytes(n: number): Uint8Array {
    const o = this.at(n);
    return this.buf.subarray(o, o + n);
  }

  /** A u64 count/length that must fit in the bytes left when each unit takes `unit` bytes. */
  async count(what: string, unit: number, max: number): Promise<number> {
    await this.ensure(8, what);
    const at = this.pos;
    const n = this.u64();
    const left = BigInt(this.left);
    if (n > BigInt(max)) throw this.error(`${what} ${n} exceeds the limit ${max}`, at);
    if (n * BigInt(unit) > left) {
      throw this.error(
        `${what} ${n} needs at least ${n * BigInt(unit)} bytes but the file has ${left} left`,
        at,
      );
    }
    return Number(n);
  }

  /** A string already in the buffer, read synchronously; undefined (nothing consumed) otherwise. */
  bufferedString(what: string): string | undefined {
    if (!this.has(8)) return undefined;
    const o = this.pos - this.start;
    const len = this.view.getBigUint64(o, this.le);
    if (len > BigInt(this.start + this.buf.byteLength - this.pos - 8)) return undefined;
    this.pos += 8;
    return this.decode(Number(len), what);
  }

  async string(what: string): Promise<string> {
    const s = this.bufferedString(what);
    if (s !== undefined) return s;
    const len = await this.count(`${what}: string length`, 1, GGUF_MAX_STRING_LENGTH);
    await this.ensure(len, what);
    return this.decode(len, what);
  }

  decode(len: number, what: string): string {
    const at = this.pos;
    const b = this.bytes(len);
    if (len <= 64) {
      // Short ASCII strings (most token strings) are faster to build by hand than to decode.
      let r = "";
      let i = 0;
      for (; i < len && b[i] < 0x80; i++) r += String.fromCharCode(b[i]);
      if (i === len) return r;
    }
    try {
      return utf8Fatal.decode(b);
    } catch {
      if (this.warnings.length < 100) {
        this.warnings.push(`byte ${at}: ${what} is not valid UTF-8 (decoded with U+FFFD)`);
      }
      return utf8Lenient.decode(b);
    }
  }
}

async function readItems(
  c: Cursor,
  type: GgufValueType,
  n: number,
  what: string,
  depth: number,
): Promise<GgufItem[]> {
  const out: GgufItem[] = [];
  switch (type) {
    case GgufValueType.STRING:
      for (let i = 0; i < n; i++) out.push(c.bufferedString(what) ?? await c.string(what));
      return out;
    case GgufValueType.ARRAY:
      for (let i = 0; i < n; i++) out.push(await readArray(c, what, depth + 1));
      return out;
  }
  const size = FIXED[type];
  await c.ensure(n * size, what);
  switch (type) {
    case GgufValueType.UINT8:
      for (let i = 0; i < n; i++) out.push(c.u8());
      break;
    case GgufValueType.INT8:
      for (let i = 0; i < n; i++) out.push(c.i8());
      break;
    case GgufValueType.UINT16:
      for (let i = 0; i < n; i++) out.push(c.u16());
      break;
    case GgufValueType.INT16:
      for (let i = 0; i < n; i++) out.push(c.i16());
      break;
    case GgufValueType.UINT32:
      for (let i = 0; i < n; i++) out.push(c.u32());
      break;
    case GgufValueType.INT32:
      for (let i = 0; i < n; i++) out.push(c.i32());
      break;
    case GgufValueType.FLOAT32:
      for (let i = 0; i < n; i++) out.push(c.f32());
      break;
    case GgufValueType.FLOAT64:
      for (let i = 0; i < n; i++) out.push(c.f64());
      break;
    case GgufValueType.UINT64:
      for (let i = 0; i < n; i++) out.push(c.u64());
      break;
    case GgufValueType.INT64:
      for (let i = 0; i < n; i++) out.push(c.i64());
      break;
    case GgufValueType.BOOL:
      for (let i = 0; i < n; i++) out.push(c.u8() !== 0);
      break;
  }
  return out;
}

const FIXED = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

async function readType(c: Cursor, what: string): Promise<GgufValueType> {
  await c.ensure(4, what);
  const at = c.pos;
  const t = c.u32();
  if (!isGgufValueType(t)) throw c.error(`${what}: invalid GGUF value type ${t | 0}`, at);
  return t;
}

async function readArray(c: Cursor, what: string, depth: number): Promise<GgufArrayValue> {
  if (depth > MAX_ARRAY_DEPTH) {
    throw c.error(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
  }
  const itemType = await readType(c, `${what}: array item type`);
  const n = await c.count(`${what}: array count`, FIXED[itemType], GGUF_MAX_ARRAY_ELEMENTS);
  const value = await readItems(c, itemType, n, what, depth);
  return { type: GgufValueType.ARRAY, itemType, value };
}

async function readValue(c: Cursor, type: GgufValueType, what: string): Promise<GgufValue> {
  if (type === GgufValueType.ARRAY) return await readArray(c, what, 1);
  const [value] = await readItems(c, type, 1, what, 0);
  return { type, value } as GgufValue;
}

/** Parse the header, metadata and tensor infos of `src` (everything but the tensor data). */
async function parse(src: ByteSource): Promise<GgufFile> {
  const warnings: string[] = [];
  const c = new Cursor(src, warnings);
  await c.ensure(24, "header");
  const magic = c.bytes(4);
  if (magic[0] !== 0x47 || magic[1] !== 0x47 || magic[2] !== 0x55 || magic[3] !== 0x46) {
    throw c.error(
      `not a GGUF file: magic is ${
        [...magic].map((b) => b.toString(16).padStart(2, "0")).join(" ")
      }, expected "GGUF"`,
      0,
    );
  }
  let version = c.u32();
  if ((version & 0xffff) === 0 && version !== 0) {
    // A byte-swapped (big-endian) file: its version reads as e.g. 0x03000000 here.
    c.le = false;
    c.pos -= 4;
    version = c.u32();
  }
  if (version === 1) throw c.error("GGUF version 1 is not supported (only 2 and 3)", 4);
  if (!GGUF_READ_VERSIONS.includes(version)) {
    throw c.error(`unsupported GGUF version ${version} (only 2 and 3)`, 4);
  }
  const nTensorsBig = c.i64();
  const nKvBig = c.i64();
  if (nTensorsBig < 0n || nKvBig < 0n) {
    throw c.error(`negative count: ${nTensorsBig} tensors, ${nKvBig} key/values`, 8);
  }
  // Smallest possible kv: 8-byte key length + 1-byte key + 4-byte type + 1-byte value = 14 bytes;
  // smallest tensor info: 8-byte name length + 4-byte n_dims + 4-byte type + 8-byte offset = 24.
  if (nKvBig * 14n + nTensorsBig * 24n > BigInt(c.left)) {
    throw c.error(
      `${nTensorsBig} tensors and ${nKvBig} key/values cannot fit in the ${c.left} bytes left`,
      8,
    );
  }
  const nTensors = Number(nTensorsBig);
  const nKv = Number(nKvBig);

  const metadata: GgufMetadata = new Map();
  const valueAt = new Map<string, number>();
  for (let i = 0; i < nKv; i++) {
    const keyAt = c.pos;
    const key = await c.string(`key ${i}`);
    if (key.length === 0) throw c.error(`key ${i} is empty`, keyAt);
    if (metadata.has(key)) throw c.error(`duplicate key '${key}'`, keyAt);
    const type = await readType(c, `key '${key}': value type`);
    valueAt.set(key, c.pos);
    metadata.set(key, await readValue(c, type, `key '${key}'`));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    if (al.type !== GgufValueType.UINT32) {
      throw c.error(
        `general.alignment must be u32 but is ${ggufValueTypeName(al.type)}`,
        valueAt.get("general.alignment"),
      );
    }
    alignment = al.value;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
      throw c.error(
        `general.alignment ${alignment} is not a power of 2`,
        valueAt.get("general.alignment"),
      );
    }
  }

  const tensors: GgufTensor[] = [];
  const byName = new Map<string, GgufTensor>();
  const infoAt: number[] = [];
  for (let i = 0; i < nTensors; i++) {
    const nameAt = c.pos;
    const name = await c.string(`tensor ${i} name`);
    if (byName.has(name)) throw c.error(`duplicate tensor name '${name}'`, nameAt);
    await c.ensure(4, `tensor '${name}'`);
    const dimsAt = c.pos;
    const nDims = c.u32();
    if (nDims > GGUF_MAX_DIMS) {
      throw c.error(`tensor '${name}' has ${nDims} dimensions (at most ${GGUF_MAX_DIMS})`, dimsAt);
    }
    await c.ensure(8 * nDims + 12, `tensor '${name}'`);
    const ne: bigint[] = [];
    for (let j = 0; j < nDims; j++) {
      const d = c.i64();
      if (d < 0n) throw c.error(`tensor '${name}' dimension ${j} is negative (${d})`, c.pos - 8);
      ne.push(d);
    }
    let count = 1n;
    for (const d of ne) count *= d;
    if (count > 0n) {
      // gguf.cpp: with ne padded to 4 dims by 1s, INT64_MAX / ne[j] must exceed ne[0]*...*ne[j-1].
      const ne4 = [...ne, 1n, 1n, 1n, 1n].slice(0, 4);
      let prod = ne4[0];
      for (let j = 1; j < 4; j++) {
        if (INT64_MAX / ne4[j] <= prod) {
          throw c.error(`tensor '${name}' has too many elements (${ne.join(" x ")})`, dimsAt);
        }
        prod *= ne4[j];
      }
    }
    const typeAt = c.pos;
    const type = c.i32();
    const layout = ggmlTypeLayout(type);
    if (!layout) throw c.error(`tensor '${name}' has invalid ggml type ${type}`, typeAt);
    const ne0 = ne.length > 0 ? ne[0] : 1n;
    if (ne0 % BigInt(layout.blockSize) !== 0n) {
      throw c.error(
        `tensor '${name}' of type ${layout.name} has ${ne0} elements per row, not a multiple of the block size ${layout.blockSize}`,
        typeAt,
      );
    }
    const bytesBig = count / BigInt(layout.blockSize) * BigInt(layout.typeSize);
    if (bytesBig > BigInt(src.size)) {
      throw c.error(
        `tensor '${name}' (${
          ne.join(" x ")
        } ${layout.name}) needs ${bytesBig} bytes, more than the file's ${src.size}`,
        dimsAt,
      );
    }
    const offsetAt = c.pos;
    const offsetBig = c.u64();
    if (offsetBig > BigInt(src.size)) {
      throw c.error(`tensor '${name}' offset ${offsetBig} is past the end of the file`, offsetAt);
    }
    const t: GgufTensor = {
      name,
      shape: ne.map(Number),
      type,
      typeName: layout.name,
      dtype: layout.name,
      offset: Number(offsetBig),
      byteLength: Number(bytesBig),
    };
    tensors.push(t);
    byName.set(name, t);
    infoAt.push(offsetAt);
  }
  const infoEnd = c.pos;
  const dataOffset = nTensors > 0 ? padTo(infoEnd, alignment) : infoEnd;
  if (dataOffset > src.size) {
    throw c.error(`the data section (at ${dataOffset}) starts past the end of the file`, infoEnd);
  }
  let expected = 0;
  for (const [i, t] of tensors.entries()) {
    if (t.offset !== expected) {
      throw c.error(
        `tensor '${t.name}' has offset ${t.offset}, expected ${expected} (the padded sum of the tensors before it)`,
        infoAt[i],
      );
    }
    if (dataOffset + t.offset + t.byteLength > src.size) {
      throw c.error(
        `tensor '${t.name}' data [${dataOffset + t.offset}, ${
          dataOffset + t.offset + t.byteLength
        }) is not inside the file (size ${src.size})`,
        infoAt[i],
      );
    }
    expected += padTo(t.byteLength, alignment);
  }

  return {
    name: src.name,
    size: src.size,
    version,
    littleEndian: c.le,
    alignment,
    metadata,
    tensors,
    dataOffset,
    infoEnd,
    warnings,
    tensor: (n) => byName.get(n),
    read(tensor, byteOffset = 0, byteLength?) {
      const t = typeof tensor === "string" ? byName.get(tensor) : tensor;
      if (!t) return Promise.reject(new RangeError(`${src.name}: no tensor named ${tensor}`));
      const len = byteLength ?? t.byteLength - byteOffset;
      if (
        !Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(len) || byteOffset < 0 ||
        len < 0 || byteOffset + len > t.byteLength
      ) {
        return Promise.reject(
          new RangeError(
            `${src.name}: range ${byteOffset}+${len} is outside tensor ${t.name} (${t.byteLength} bytes)`,
          ),
        );
      }
      return src.read(dataOffset + t.offset + byteOffset, len);
    },
    close: () => src.close(),
  };
}

/**
 * Open a GGUF file (v2 or v3, little- or big-endian) from a path/URL or a {@link ByteSource}. Only
 * the header, metadata and tensor infos are read; tensor data is read by `file.read(tensor)`.
 * `close()` closes the source (also one passed in). Malformed input throws {@link FormatError}.
 *
 * @example
 * ```ts
 * import { openGguf } from "@quantx/gguf";
 * const file = await openGguf("../shared/golden/llama-tiny/gguf/q8_0.gguf");
 * console.log(file.metadata.get("general.architecture")?.value); // "llama"
 * const t = file.tensors[0];
 * console.log(t.name, t.shape, t.typeName, (await file.read(t)).byteLength === t.byteLength);
 * await file.close();
 * ```
 */
export function openGguf(source: ByteSource | string): Promise<GgufFile> {
  return parseSource(source, parse);
}
