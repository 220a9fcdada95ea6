/**
 * safetensors reader: an 8-byte little-endian header length, a JSON header, then raw
 * little-endian tensor data. The header is validated in full before anything else is read (see
 * {@link openSafetensors}); tensor data is read lazily, one range at a time.
 * @module
 */
import {
  type ByteSource,
  FormatError,
  parseSource,
  QuantxError,
  type SourceInput,
  type TensorInfo,
} from "@quantx/core";
import {
  canDecodeF32,
  decodeF32Into,
  dtypeBits,
  dtypeByteLength,
  isSafetensorsDtype,
  type SafetensorsDtype,
} from "./dtypes.ts";
import { brief, isObject, parseJsonBytes, scanMembers, skipWs } from "./json.ts";

/** Largest header accepted, in bytes (the limit of the reference implementation, 100 MB). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes read from the source per step of {@link SafetensorsFile.readF32}. */
export const READ_CHUNK_BYTES: number = 8 << 20;

/** One tensor of a safetensors file. */
export interface SafetensorsTensor extends TensorInfo {
  /** Name (the header key). */
  name: string;
  /** Row-major (PyTorch) shape, outermost dimension first; `[]` for a scalar. */
  shape: number[];
  /** Element type exactly as in the header, upper case (`F32`, `BF16`, `F8_E4M3`, ...). */
  dtype: SafetensorsDtype;
  /** Bytes of data. */
  byteLength: number;
  /** `data_offsets` from the header: begin and end relative to the start of the data section. */
  dataOffsets: [number, number];
  /** Absolute byte offset of the data in the file. */
  dataOffset: number;
  /** Name of the file (source) that holds the tensor. */
  file: string;
}

/** An open safetensors file: header parsed and validated, tensor data read on demand. */
export interface SafetensorsFile {
  /** The source's name (path, URL or label); used in every error message. */
  readonly name: string;
  /** File size in bytes. */
  readonly size: number;
  /** Length of the JSON header in bytes (the first 8 bytes of the file). */
  readonly headerLength: number;
  /** Absolute offset of the data section (`8 + headerLength`). */
  readonly dataStart: number;
  /** Tensors in file order (by data offset; ties in header order). */
  readonly tensors: SafetensorsTensor[];
  /** The header's `__metadata__` string map (empty when absent). */
  readonly metadata: Record<string, string>;
  /** Readable oddities the reference reader rejects: gaps between tensors, trailing bytes. */
  readonly warnings: string[];
  /** The tensor named `name`, if any. */
  tensor(name: string): SafetensorsTensor | undefined;
  /**
   * Raw bytes of a tensor: `length` bytes (default: to the end of the tensor) starting `offset`
   * bytes into its data. The result may be a view into the source's buffer; copy before mutating.
   * `into` is a buffer to read into, for callers that reuse theirs (see `ByteSource.read`).
   */
  read(name: string, offset?: number, length?: number, into?: Uint8Array): Promise<Uint8Array>;
  /**
   * Elements `[start, start + count)` of a tensor (row-major) as float32 (default: from `start`
   * to the end). Any dtype but `F6_*` and `C64`; read from the source in chunks of
   * {@link READ_CHUNK_BYTES}. With `into` (at least `count` values) the values are written into it
   * and `into.subarray(0, count)` is returned, so a caller can reuse its buffers.
   */
  readF32(name: string, start?: number, count?: number, into?: Float32Array): Promise<Float32Array>;
  /** Close the source. Safe to call twice. */
  close(): Promise<void>;
}

/** The parsed and validated header of a safetensors file. */
export interface SafetensorsHeader {
  /** Tensors in file order (by data offset; ties in header order). */
  tensors: SafetensorsTensor[];
  /** `__metadata__` (empty when absent). */
  metadata: Record<string, string>;
  /** Gaps and trailing bytes (accepted here, rejected by the reference reader). */
  warnings: string[];
}

/** Number of elements of `shape`, or undefined when it is not a safe integer. */
function elements(shape: number[]): number | undefined {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

function isOffset(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parse and validate a safetensors JSON header.
 *
 * @param header the header bytes (file bytes `[8, 8 + headerLength)`)
 * @param file the file name for error messages
 * @param fileSize the whole file's size, to check that every tensor lies inside it
 * @throws {FormatError} naming `file` and the byte offset of the problem (of the tensor's key in
 * the header for a bad entry): invalid UTF-8 or JSON, a header that is not an object, a duplicate
 * key, a `__metadata__` that is not a map of strings, an unknown dtype, a shape that is not a
 * list of non-negative integers, `data_offsets` that are not `[begin, end]` with
 * `begin <= end`, a length that disagrees with shape and dtype, a range past the end of the
 * file, or two tensors whose bytes overlap.
 */
export function parseSafetensorsHeader(
  header: Uint8Array,
  file: string,
  fileSize: number,
): SafetensorsHeader {
  const base = 8;
  const dataStart = base + header.byteLength;
  const root = parseJsonBytes(header, file, base);
  const rootPos = skipWs(header, 0);
  if (!isObject(root)) {
    throw new FormatError(`header is ${brief(root)}, not a JSON object`, {
      file,
      offset: base + rootPos,
    });
  }
  const members = scanMembers(header, rootPos);
  const seen = new Set<string>();
  const entries: { keyPos: number; tensor: SafetensorsTensor }[] = [];
  const meta: [string, string][] = [];
  for (const m of members) {
    const at = { file, offset: base + m.keyPos };
    if (seen.has(m.key)) throw new FormatError(`duplicate key ${brief(m.key)} in header`, at);
    seen.add(m.key);
    const v = root[m.key];
    if (m.key === "__metadata__") {
      if (v === null) continue;
      if (!isObject(v)) {
        throw new FormatError(`__metadata__ must be an object of strings, got ${brief(v)}`, {
          file,
          offset: base + m.valuePos,
        });
      }
      const metaKeys = new Set<string>();
      for (const mm of scanMembers(header, m.valuePos)) {
        const value = v[mm.key];
        const where = { file, offset: base + mm.keyPos };
        if (metaKeys.has(mm.key)) {
          throw new FormatError(`duplicate __metadata__ key ${brief(mm.key)}`, where);
        }
        metaKeys.add(mm.key);
        if (typeof value !== "string") {
          throw new FormatError(
            `__metadata__ value of ${brief(mm.key)} must be a string, got ${brief(value)}`,
            where,
          );
        }
        meta.push([mm.key, value]);
      }
      continue;
    }
    const what = `tensor ${brief(m.key)}`;
    if (!isObject(v)) {
      throw new FormatError(
        `${what}: expected {"dtype", "shape", "data_offsets"}, got ${brief(v)}`,
        at,
      );
    }
    const { dtype, shape, data_offsets: offsets } = v;
    if (typeof dtype !== "string" || !isSafetensorsDtype(dtype)) {
      throw new FormatError(`${what}: unknown dtype ${brief(dtype)}`, at);
    }
    if (!Array.isArray(shape) || !shape.every(isOffset)) {
      throw new FormatError(
        `${what}: shape must be a list of non-negative integers, got ${brief(shape)}`,
        at,
      );
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 || !isOffset(offsets[0]) ||
      !isOffset(offsets[1]) || offsets[1] < offsets[0]
    ) {
      throw new FormatError(
        `${what}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${brief(offsets)}`,
        at,
      );
    }
    const [begin, end] = offsets as [number, number];
    const count = elements(shape as number[]);
    const byteLength = count === undefined ? undefined : dtypeByteLength(dtype, count);
    if (byteLength === undefined) {
      throw new FormatError(
        `${what}: shape ${brief(shape)} of ${dtype} is not a whole number of bytes ` +
          `or too large`,
        at,
      );
    }
    if (end - begin !== byteLength) {
      throw new FormatError(
        `${what}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape ` +
          `${brief(shape)} of ${dtype} needs ${byteLength}`,
        at,
      );
    }
    if (dataStart + end > fileSize) {
      throw new FormatError(
        `${what}: data ends at byte ${dataStart + end}, past the end of the file ` +
          `(${fileSize} bytes)`,
        at,
      );
    }
    entries.push({
      keyPos: base + m.keyPos,
      tensor: {
        name: m.key,
        shape: (shape as number[]).map((d) => d + 0), // -0 -> 0
        dtype,
        byteLength,
        dataOffsets: [begin, end],
        dataOffset: dataStart + begin,
        file,
      },
    });
  }
  // file order: by data offset; Array.prototype.sort is stable, so ties keep header order
  entries.sort((a, b) =>
    a.tensor.dataOffsets[0] - b.tensor.dataOffsets[0] ||
    a.tensor.dataOffsets[1] - b.tensor.dataOffsets[1]
  );
  const warnings: string[] = [];
  let prev: SafetensorsTensor | undefined;
  let covered = 0;
  for (const { keyPos, tensor: t } of entries) {
    if (t.byteLength === 0) continue;
    const [begin, end] = t.dataOffsets;
    if (prev && begin < prev.dataOffsets[1]) {
      throw new FormatError(
        `tensor ${brief(t.name)}: data_offsets [${begin}, ${end}] overlap tensor ${
          brief(prev.name)
        } [${prev.dataOffsets[0]}, ${prev.dataOffsets[1]}]`,
        { file, offset: keyPos },
      );
    }
    if (begin > covered) {
      warnings.push(`${begin - covered} unused bytes before tensor ${brief(t.name)}`);
    }
    covered = end;
    prev = t;
  }
  if (dataStart + covered < fileSize) {
    warnings.push(`${fileSize - dataStart - covered} bytes after the last tensor`);
  }
  return { tensors: entries.map((e) => e.tensor), metadata: Object.fromEntries(meta), warnings };
}

/** Decode the 8-byte header length, rejecting one over the limit or past the end of the file. */
function headerLength(head: Uint8Array, file: string, size: number): number {
  const dv = new DataView(head.buffer, head.byteOffset, 8);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  const n = hi * 4294967296 + lo;
  if (hi !== 0 || lo > SAFETENSORS_MAX_HEADER) {
    const exact = (BigInt(hi) << 32n) | BigInt(lo);
    throw new FormatError(
      `header length ${exact} is over the ${SAFETENSORS_MAX_HEADER}-byte limit`,
      { file, offset: 0 },
    );
  }
  if (8 + n > size) {
    throw new FormatError(
      `header length ${n} runs past the end of the file (${size} bytes)`,
      { file, offset: 0 },
    );
  }
  return n;
}

function renamed(source: ByteSource, name: string): ByteSource {
  return {
    name,
    size: source.size,
    read: (offset, length, into) => source.read(offset, length, into),
    close: () => source.close(),
  };
}

/**
 * Open a safetensors file and validate its header.
 *
 * `input` is a path, a URL (`http(s)://` uses range requests), bytes, a Blob or a `ByteSource`.
 * `name` replaces the source's name in messages. Only the 8-byte length and the header are read
 * here; tensor data is read by {@link SafetensorsFile.read} and {@link SafetensorsFile.readF32}.
 * On failure a source opened here is closed; a `ByteSource` passed in stays open.
 *
 * @throws {FormatError} for a file too small for the length, a header length over 100 MB or past
 * the end of the file, and everything {@link parseSafetensorsHeader} rejects.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { openSafetensors, writeSafetensors } from "@quantx/safetensors";
 * const sink = memorySink("tiny.safetensors");
 * await writeSafetensors(sink, [
 *   { name: "w", dtype: "F32", shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) },
 * ]);
 * const file = await openSafetensors(sink.bytes(), "tiny.safetensors");
 * console.log(file.tensors[0].shape, await file.readF32("w")); // [2] Float32Array [1, 2]
 * await file.close();
 * ```
 */
export function openSafetensors(input: SourceInput, name?: string): Promise<SafetensorsFile> {
  return parseSource(
    input,
    (source) =>
      openFromSource(name !== undefined && source.name !== name ? renamed(source, name) : source),
    name,
  );
}

async function openFromSource(source: ByteSource): Promise<SafetensorsFile> {
  const file = source.name, size = source.size;
  if (size < 8) {
    throw new FormatError(
      `file is ${size} bytes, too small for a safetensors header length (8 bytes)`,
      { file, offset: 0 },
    );
  }
  const n = headerLength(await source.read(0, 8), file, size);
  const header = await source.read(8, n);
  const { tensors, metadata, warnings } = parseSafetensorsHeader(header, file, size);
  const byName = new Map(tensors.map((t) => [t.name, t]));

  const get = (name: string): SafetensorsTensor => {
    const t = byName.get(name);
    if (!t) {
      throw new QuantxError(`${file}: no tensor named ${brief(name)}`, {
        code: "ENOTENSOR",
        path: file,
      });
    }
    return t;
  };

  const badRange = (what: string) =>
    new QuantxError(`${file}: ${what}`, { code: "EINVAL", path: file });

  return {
    name: file,
    size,
    headerLength: n,
    dataStart: 8 + n,
    tensors,
    metadata,
    warnings,
    tensor: (name) => byName.get(name),
    read(name, offset = 0, length?, into?) {
      const t = get(name);
      const len = length ?? t.byteLength - offset;
      if (
        !Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 ||
        offset + len > t.byteLength
      ) {
        return Promise.reject(
          badRange(
            `bytes [${offset}, ${offset + len}) are outside tensor ${brief(name)} ` +
              `(${t.byteLength} bytes)`,
          ),
        );
      }
      return source.read(t.dataOffset + offset, len, into);
    },
    async readF32(name, start = 0, count?, into?) {
      const t = get(name);
      if (!canDecodeF32(t.dtype)) {
        throw new QuantxError(
          `${file}: tensor ${brief(name)} is ${t.dtype}, which has no float32 form here`,
          {
            code: "EUNSUPPORTED",
            path: file,
          },
        );
      }
      const total = elements(t.shape)!;
      const n = count ?? total - start;
      if (
        !Number.isSafeInteger(start) || !Number.isSafeInteger(n) || start < 0 || n < 0 ||
        start + n > total
      ) {
        throw badRange(
          `elements [${start}, ${start + n}) are outside tensor ${brief(name)} (${total} elements)`,
        );
      }
      const target = into && into.length >= n ? into.subarray(0, n) : undefined;
      if (t.dtype === "F32" && HOST_LE && n > 0 && n * 4 <= READ_CHUNK_BYTES) {
        // One read, into `target` when given; a freshly allocated result is used as it is.
        const bytes = await source.read(
          t.dataOffset + start * 4,
          n * 4,
          target && new Uint8Array(target.buffer, target.byteOffset, n * 4),
        );
        if (target && bytes.buffer === target.buffer && bytes.byteOffset === target.byteOffset) {
          return target;
        }
        if (
          bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength &&
          bytes.buffer instanceof ArrayBuffer
        ) {
          return new Float32Array(bytes.buffer);
        }
        const out = target ?? new Float32Array(n);
        decodeF32Into("F32", bytes, out, 0, n);
        return out;
      }
      const bits = dtypeBits(t.dtype);
      const out = target ?? new Float32Array(n);
      // elements per chunk: a multiple of 8 so every chunk starts on a byte boundary
      const per = Math.max(8, Math.floor((READ_CHUNK_BYTES * 8) / bits / 8) * 8);
      const fetch = (first: number) => {
        const m = Math.min(per, n - first);
        const bitStart = (start + first) * bits;
        const byteStart = Math.floor(bitStart / 8);
        const byteEnd = Math.ceil(((start + first + m) * bits) / 8);
        return source.read(t.dataOffset + byteStart, byteEnd - byteStart).then((bytes) => ({
          first,
          m,
          skip: (bitStart % 8) / bits,
          bytes,
        }));
      };
      let next: ReturnType<typeof fetch> | undefined = n > 0 ? fetch(0) : undefined;
      try {
        while (next) {
          const c = await next;
          next = c.first + c.m < n ? fetch(c.first + c.m) : undefined;
          decodeF32Into(t.dtype, c.bytes, out, c.first, c.m, c.skip);
        }
      } finally {
        next?.catch(() => {});
      }
      return out;
    },
    close: () => source.close(),
  };
}
