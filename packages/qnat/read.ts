/**
 * QNAT reader. Parses the header, metadata and tensor headers, checks every offset and length
 * against the file, then reads tensor data lazily (whole tensors or element ranges).
 *
 * Files from qlora-rs 1.x (`export_native`) store metadata length 0, flags 0 and data offsets
 * computed from a wrong header size; for them the sections are laid out sequentially after the
 * tensor headers instead, each tensor's optional sections (zero points, quantized scales) being
 * recognised from the distance between its recorded offset and the next one.
 * @module
 */
import { type ByteSource, parseSource, type TensorInfo } from "@quantx/core";
import { FieldCursor } from "./cursor.ts";
import { decodeQnatNf4 } from "./decode.ts";
import {
  qloraRsDataLayout,
  QNAT_COMPUTE_DTYPES,
  QNAT_FLAG_DOUBLE_QUANT,
  QNAT_FLAG_ZERO_POINTS,
  QNAT_HEADER_SIZE,
  QNAT_KNOWN_FLAGS,
  QNAT_MAX_RANK,
  QNAT_SCALE_GROUP,
  QNAT_VERSION,
  type QnatDataLayout,
  qnatDataLayout,
  qnatElementCount,
  type QnatMetadata,
  type QnatSection,
} from "./format.ts";
import { dequantizeQnatScales } from "./scales.ts";

/** The fixed header as stored. */
export interface QnatHeader {
  /** Format version (1). */
  version: number;
  /** Flag bits (see `QNAT_FLAG_*`). */
  flags: number;
  /** Metadata length as stored (0 in qlora-rs 1.x files). */
  metadataLength: number;
  /** Number of tensors. */
  tensorCount: number;
  /** True for a file written by qlora-rs 1.x (laid out sequentially on reading). */
  legacy: boolean;
}

/** One tensor as a QNAT file describes it. */
export interface QnatTensor extends TensorInfo {
  /** `"nf4"` for a quantized tensor, `"f32"` for one kept unquantized (block size 0). */
  dtype: "nf4" | "f32";
  /** Number of elements. */
  elements: number;
  /** NF4 block size (0 = unquantized). */
  blockSize: number;
  /** Number of blocks (0 when unquantized). */
  blockCount: number;
  /** Absolute offset of the tensor's data (as laid out; see {@link recordedOffset}). */
  offset: number;
  /** Data offset as stored in the tensor header (wrong in qlora-rs 1.x files). */
  recordedOffset: number;
  /** Whether the tensor has per-block zero points. */
  zeroPoints: boolean;
  /** Whether the tensor has u8 quantized scales. */
  doubleQuant: boolean;
  /** Byte layout of the data sections. */
  layout: QnatDataLayout;
}

/** A tensor's stored sections, decoded from little-endian bytes. */
export interface QnatRawTensor {
  /** Unquantized values (block size 0). */
  values?: Float32Array;
  /** Packed NF4 codes, first element in the low nibble. */
  codes?: Uint8Array;
  /** f32 scales as stored (absent when QuantX double-quantized them). */
  scales?: Float32Array;
  /** u8 quantized scales. */
  quantizedScales?: Uint8Array;
  /** Factors of the quantized scales. */
  scaleFactors?: Float32Array;
  /** Per-block zero points. */
  zeroPoints?: Float32Array;
}

/** An open QNAT file. */
export interface QnatFile {
  /** Source name. */
  readonly name: string;
  /** File size in bytes. */
  readonly size: number;
  /** The fixed header. */
  readonly header: QnatHeader;
  /** Model name, type and compute dtype. */
  readonly metadata: QnatMetadata;
  /** Tensors in file order. */
  readonly tensors: QnatTensor[];
  /** Absolute offset where tensor data begins (the end of the tensor headers). */
  readonly dataOffset: number;
  /** The tensor named `name`, if any. */
  tensor(name: string): QnatTensor | undefined;
  /** The stored sections of a tensor. */
  readRaw(name: string): Promise<QnatRawTensor>;
  /**
   * Dequantized values of `count` elements from element `start` (default: the whole tensor).
   * NF4 values are `float32(codebook[code] * scale)` (with zero points
   * `float32(float32(codebook[code] + zeroPoint) * scale)`); unquantized values are returned as
   * stored. qlora-rs files that hold both f32 and quantized scales are decoded with the f32 ones.
   */
  readF32(name: string, start?: number, count?: number): Promise<Float32Array>;
  /** Close the source. */
  close(): Promise<void>;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function f32FromLe(bytes: Uint8Array): Float32Array {
  if (HOST_LE) return new Float32Array(bytes.slice().buffer);
  const out = new Float32Array(bytes.length / 4);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

interface ParsedTensor {
  name: string;
  shape: number[];
  elements: number;
  blockSize: number;
  blockCount: number;
  recordedOffset: number;
  /** Where the tensor's header starts. */
  at: number;
  /** Where its offset field is. */
  offsetField: number;
}

/**
 * Open a QNAT file from a {@link ByteSource} or a path/URL (opened with `openSource`). Reads only
 * the headers; throws {@link FormatError} for anything that is not a valid QNAT file.
 *
 * @example
 * ```ts
 * import { bytesSource, memorySink } from "@quantx/core";
 * import { openQnat, writeQnat } from "@quantx/qnat";
 * const sink = memorySink();
 * await writeQnat(sink, { modelName: "m" }, [
 *   { name: "w", shape: [64], data: new Float32Array(64).fill(2) },
 * ]);
 * const file = await openQnat(bytesSource(sink.bytes(), "m.qnat"));
 * console.log(file.tensors[0].dtype, (await file.readF32("w"))[0]); // "nf4" 2
 * ```
 */
export function openQnat(source: ByteSource | string): Promise<QnatFile> {
  return parseSource(source, parse);
}

async function parse(src: ByteSource): Promise<QnatFile> {
  const c = new FieldCursor(src);
  if (src.size < QNAT_HEADER_SIZE) {
    c.fail(`file is ${src.size} bytes, too small for the ${QNAT_HEADER_SIZE}-byte QNAT header`, 0);
  }
  const magic = await c.bytes(4, "magic");
  if (String.fromCharCode(...magic) !== "QNAT") {
    c.fail(`bad magic ${JSON.stringify(String.fromCharCode(...magic))}, expected "QNAT"`, 0);
  }
  const version = await c.u32("version");
  if (version !== QNAT_VERSION) c.fail(`unsupported version ${version} (expected 1)`, 4);
  const flags = await c.u32("flags");
  if ((flags & ~QNAT_KNOWN_FLAGS) >>> 0 !== 0) {
    c.fail(`flags 0x${flags.toString(16)} set unknown bits (only bits 0 and 1 are defined)`, 8);
  }
  const metadataLength = await c.u64("metadata length");
  const tensorCount = await c.u32("tensor count");
  const reserved = await c.u32("reserved");
  if (reserved !== 0) c.fail(`reserved field is ${reserved}, must be 0`, 24);
  const legacy = metadataLength === 0;
  if (legacy && flags !== 0) {
    c.fail(`metadata length 0 (a qlora-rs 1.x file) but flags are ${flags}`, 12);
  }

  const modelName = await c.string("model name");
  const modelType = await c.string("model type");
  const dtypeAt = c.pos;
  const dtypeByte = await c.u8("compute dtype");
  const computeDtype = QNAT_COMPUTE_DTYPES[dtypeByte];
  if (computeDtype === undefined) c.fail(`compute dtype ${dtypeByte} is not 0, 1 or 2`, dtypeAt);
  if (!legacy && c.pos - QNAT_HEADER_SIZE !== metadataLength) {
    c.fail(
      `metadata length field says ${metadataLength} bytes but the metadata is ${
        c.pos - QNAT_HEADER_SIZE
      }`,
      12,
    );
  }

  const minHeader = 24;
  if (tensorCount > c.remaining / minHeader) {
    c.fail(`tensor count ${tensorCount} cannot fit in the ${c.remaining} bytes left`, 20);
  }
  const parsed: ParsedTensor[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = c.pos;
    const name = await c.string(`tensor ${i} name`);
    if (names.has(name)) c.fail(`duplicate tensor name ${JSON.stringify(name)}`, at);
    names.add(name);
    const rankAt = c.pos;
    const rank = await c.u32(`tensor "${name}" rank`);
    if (rank > QNAT_MAX_RANK) {
      c.fail(`tensor "${name}" has rank ${rank} (max ${QNAT_MAX_RANK})`, rankAt);
    }
    const shape: number[] = [];
    for (let d = 0; d < rank; d++) shape.push(await c.u64(`tensor "${name}" dimension ${d}`));
    const elements = qnatElementCount(shape);
    if (Number.isNaN(elements)) c.fail(`tensor "${name}" shape [${shape}] is too large`, rankAt);
    const blockSize = await c.u32(`tensor "${name}" block size`);
    const offsetField = c.pos;
    const recordedOffset = await c.u64(`tensor "${name}" offset`);
    const blockCount = await c.u32(`tensor "${name}" block count`);
    parsed.push({
      name,
      shape,
      elements,
      blockSize,
      blockCount,
      recordedOffset,
      at,
      offsetField,
    });
  }
  const dataOffset = c.pos;
  const tensors = legacy
    ? layoutLegacy(c, parsed, src.size)
    : layoutQuantx(c, parsed, flags, src.size);
  const lastTensor = tensors[tensors.length - 1];
  const end = lastTensor ? lastTensor.offset + lastTensor.byteLength : dataOffset;
  if (end !== src.size) {
    c.fail(`${src.size - end} unexpected bytes after the last tensor's data`, end);
  }

  const byName = new Map(tensors.map((t) => [t.name, t]));
  const get = (name: string): QnatTensor => {
    const t = byName.get(name);
    if (!t) throw new RangeError(`qnat: no tensor named "${name}" in ${src.name}`);
    return t;
  };
  const read = async (s: QnatSection | undefined, from = 0, length = s ? s.length - from : 0) =>
    s && length > 0 ? await src.read(s.offset + from, length) : new Uint8Array(0);

  return {
    name: src.name,
    size: src.size,
    header: { version, flags, metadataLength, tensorCount, legacy },
    metadata: { modelName, modelType, computeDtype: computeDtype! },
    tensors,
    dataOffset,
    tensor: (name) => byName.get(name),
    async readRaw(name) {
      const t = get(name);
      const l = t.layout;
      const raw: QnatRawTensor = {};
      if (l.values) raw.values = f32FromLe(await read(l.values));
      if (l.codes) raw.codes = (await read(l.codes)).slice();
      if (l.scales) raw.scales = f32FromLe(await read(l.scales));
      if (l.quantizedScales) raw.quantizedScales = (await read(l.quantizedScales)).slice();
      if (l.scaleFactors) raw.scaleFactors = f32FromLe(await read(l.scaleFactors));
      if (l.zeroPoints) raw.zeroPoints = f32FromLe(await read(l.zeroPoints));
      return raw;
    },
    async readF32(name, start = 0, count) {
      const t = get(name);
      count ??= t.elements - start;
      if (
        !Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 ||
        start + count > t.elements
      ) {
        throw new RangeError(
          `qnat: range [${start}, ${start} + ${count}) is outside tensor "${name}" (${t.elements})`,
        );
      }
      const l = t.layout;
      if (l.values) return f32FromLe(await read(l.values, start * 4, count * 4));
      if (count === 0) return new Float32Array(0);
      const bs = t.blockSize;
      const last = start + count - 1;
      const codeBase = start - (start & 1);
      const codes = await read(l.codes, codeBase >> 1, (last >> 1) - (codeBase >> 1) + 1);
      const b0 = Math.floor(start / bs), nb = Math.floor(last / bs) - b0 + 1;
      let scales: Float32Array;
      if (l.scales) {
        scales = f32FromLe(await read(l.scales, b0 * 4, nb * 4));
      } else {
        const q = await read(l.quantizedScales, b0, nb);
        const g0 = Math.floor(b0 / QNAT_SCALE_GROUP);
        const g1 = Math.floor((b0 + nb - 1) / QNAT_SCALE_GROUP);
        const factors = f32FromLe(await read(l.scaleFactors, g0 * 4, (g1 - g0 + 1) * 4));
        scales = dequantizeQnatScales(q, factors, b0, nb);
      }
      const zp = l.zeroPoints ? f32FromLe(await read(l.zeroPoints, b0 * 4, nb * 4)) : undefined;
      return decodeQnatNf4(codes, codeBase, scales, zp, bs, start, count);
    },
    close: () => src.close(),
  };
}

function toTensor(
  p: ParsedTensor,
  offset: number,
  layout: QnatDataLayout,
  zeroPoints: boolean,
  doubleQuant: boolean,
): QnatTensor {
  return {
    name: p.name,
    shape: p.shape,
    dtype: p.blockSize === 0 ? "f32" : "nf4",
    byteLength: layout.byteLength,
    elements: p.elements,
    blockSize: p.blockSize,
    blockCount: p.blockCount,
    offset,
    recordedOffset: p.recordedOffset,
    zeroPoints,
    doubleQuant,
    layout,
  };
}

/** QuantX files: offsets must be exactly contiguous from the end of the tensor headers. */
function layoutQuantx(
  c: FieldCursor,
  parsed: ParsedTensor[],
  flags: number,
  size: number,
): QnatTensor[] {
  let offset = c.pos;
  return parsed.map((p) => {
    const expectedBlocks = p.blockSize === 0 ? 0 : Math.ceil(p.elements / p.blockSize);
    if (p.blockCount !== expectedBlocks) {
      c.fail(
        `tensor "${p.name}": block count ${p.blockCount}, expected ${expectedBlocks} for ${p.elements} elements and block size ${p.blockSize}`,
        p.offsetField + 8,
      );
    }
    if (p.recordedOffset !== offset) {
      c.fail(
        `tensor "${p.name}": data offset ${p.recordedOffset}, expected ${offset} (data is contiguous in header order)`,
        p.offsetField,
      );
    }
    const layout = qnatDataLayout(offset, p.elements, p.blockSize, p.blockCount, flags);
    if (offset + layout.byteLength > size) {
      c.fail(
        `tensor "${p.name}": ${layout.byteLength} bytes of data run past the end of the file (size ${size})`,
        offset,
      );
    }
    const quantized = p.blockSize !== 0;
    const t = toTensor(
      p,
      offset,
      layout,
      quantized && (flags & QNAT_FLAG_ZERO_POINTS) !== 0,
      quantized && (flags & QNAT_FLAG_DOUBLE_QUANT) !== 0,
    );
    offset += layout.byteLength;
    return t;
  });
}

/**
 * qlora-rs 1.x files: sections follow the headers back to back. The recorded offsets are all off by
 * the same amount, so their differences give each tensor's size, which tells which optional
 * sections it has (codes + 4n scales, plus 4n zero points and/or n + 4 quantized scales).
 */
function layoutLegacy(c: FieldCursor, parsed: ParsedTensor[], size: number): QnatTensor[] {
  let offset = c.pos;
  return parsed.map((p, i) => {
    const nb = p.blockCount, bs = p.blockSize;
    if (bs === 0 || bs % 2 !== 0) {
      c.fail(
        `qlora-rs 1.x tensor "${p.name}": block size ${bs} (this reader needs an even block size)`,
        p.offsetField - 4,
      );
    }
    if (nb * bs !== p.elements) {
      c.fail(
        `qlora-rs 1.x tensor "${p.name}": ${nb} blocks of ${bs} do not cover ${p.elements} elements`,
        p.offsetField + 8,
      );
    }
    const next = parsed[i + 1];
    const stored = next ? next.recordedOffset - p.recordedOffset : size - offset;
    const base = (nb * bs) / 2 + nb * 4;
    const extra = stored - base;
    let zeroPoints = false, doubleQuant = false;
    if (nb > 0 && extra === 4 * nb) zeroPoints = true;
    else if (nb > 0 && extra === nb + 4) doubleQuant = true;
    else if (nb > 0 && extra === 5 * nb + 4) zeroPoints = doubleQuant = true;
    else if (extra !== 0) {
      c.fail(
        `qlora-rs 1.x tensor "${p.name}": ${stored} bytes of data between its offset and the ${
          next ? "next tensor's" : "end of the file"
        }, not a valid size for ${nb} blocks of ${bs}`,
        p.offsetField,
      );
    }
    const layout = qloraRsDataLayout(offset, bs, nb, zeroPoints, doubleQuant);
    if (offset + layout.byteLength > size) {
      c.fail(`tensor "${p.name}": data runs past the end of the file (size ${size})`, offset);
    }
    const t = toTensor(p, offset, layout, zeroPoints, doubleQuant);
    offset += layout.byteLength;
    return t;
  });
}
