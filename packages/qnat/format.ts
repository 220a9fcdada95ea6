/**
 * The QNAT container's fixed facts: magic, header size, flag bits, compute dtypes, and the byte
 * layout of one tensor's data (NF4 codes, scales, optional zero points).
 * @module
 */

/** `"QNAT"` as the first four bytes of every file. */
export const QNAT_MAGIC = "QNAT";
/** The only QNAT version. */
export const QNAT_VERSION = 1;
/** Bytes of the fixed header: magic, version, flags, u64 metadata length, tensor count, reserved. */
export const QNAT_HEADER_SIZE = 28;
/** Flag bit 0: every tensor stores one f32 zero point per block. */
export const QNAT_FLAG_ZERO_POINTS = 1;
/** Flag bit 1: every tensor stores double-quantized scales (u8 per block + f32 per group). */
export const QNAT_FLAG_DOUBLE_QUANT = 2;
/** All flag bits a file may set. */
export const QNAT_KNOWN_FLAGS = QNAT_FLAG_ZERO_POINTS | QNAT_FLAG_DOUBLE_QUANT;
/** Blocks that share one f32 scale factor when scales are double-quantized. */
export const QNAT_SCALE_GROUP = 256;
/** Most dimensions a tensor may have in a file this package reads. */
export const QNAT_MAX_RANK = 32;
/** Default NF4 block size. */
export const QNAT_DEFAULT_BLOCK_SIZE = 64;

/** The compute dtype byte of the metadata: 0 f32, 1 f16, 2 bf16. */
export type QnatComputeDtype = "f32" | "f16" | "bf16";
/** Compute dtypes in byte order. */
export const QNAT_COMPUTE_DTYPES: readonly QnatComputeDtype[] = ["f32", "f16", "bf16"];

/** Model-level metadata stored after the header. */
export interface QnatMetadata {
  /** Model name (UTF-8). */
  modelName: string;
  /** Model type, e.g. `"llama"` or `"qlora"` (UTF-8). */
  modelType: string;
  /** Dtype a consumer should compute in. */
  computeDtype: QnatComputeDtype;
}

/** Where one section of a tensor's data lies: absolute file offset and length in bytes. */
export interface QnatSection {
  /** Absolute offset in the file. */
  offset: number;
  /** Length in bytes. */
  length: number;
}

/**
 * Byte layout of one tensor's data. QuantX order: codes, scales (f32, or u8 quantized scales then
 * f32 group factors), zero points. qlora-rs 1.x order: codes, f32 scales, zero points, u8 quantized
 * scales, one f32 factor. A section absent from the tensor is `undefined`.
 */
export interface QnatDataLayout {
  /** Total bytes of the tensor's data. */
  byteLength: number;
  /** Unquantized tensors (block size 0): n little-endian float32 values. */
  values?: QnatSection;
  /** Packed NF4 codes, first element in the low nibble. */
  codes?: QnatSection;
  /** One f32 scale per block (absent when QuantX double-quantizes the scales). */
  scales?: QnatSection;
  /** One u8 quantized scale per block. */
  quantizedScales?: QnatSection;
  /** f32 scale factors of the quantized scales (one per 256 blocks; one in total for qlora-rs). */
  scaleFactors?: QnatSection;
  /** One f32 zero point per block. */
  zeroPoints?: QnatSection;
}

/** Number of elements of a shape (1 for a scalar), or NaN when it is not a safe integer. */
export function qnatElementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return NaN;
  }
  return n;
}

/** Blocks of `blockSize` elements that cover `n` elements (0 for an unquantized tensor). */
export function qnatBlockCount(n: number, blockSize: number): number {
  return blockSize === 0 ? 0 : Math.ceil(n / blockSize);
}

/**
 * Layout of a tensor's data in a QuantX QNAT file starting at `offset`: `n` elements, `blockSize`
 * (0 = unquantized f32), `blockCount` blocks, with the file's `flags`.
 */
export function qnatDataLayout(
  offset: number,
  n: number,
  blockSize: number,
  blockCount: number,
  flags: number,
): QnatDataLayout {
  if (blockSize === 0) {
    return { byteLength: n * 4, values: { offset, length: n * 4 } };
  }
  let at = offset;
  const take = (length: number): QnatSection => {
    const s = { offset: at, length };
    at += length;
    return s;
  };
  const layout: QnatDataLayout = { byteLength: 0, codes: take(Math.ceil(n / 2)) };
  if (flags & QNAT_FLAG_DOUBLE_QUANT) {
    layout.quantizedScales = take(blockCount);
    layout.scaleFactors = take(Math.ceil(blockCount / QNAT_SCALE_GROUP) * 4);
  } else {
    layout.scales = take(blockCount * 4);
  }
  if (flags & QNAT_FLAG_ZERO_POINTS) layout.zeroPoints = take(blockCount * 4);
  layout.byteLength = at - offset;
  return layout;
}

/**
 * Layout of a tensor's data as qlora-rs 1.x `export_native` writes it: codes (`blockCount *
 * blockSize / 2` bytes), f32 scales, then optionally f32 zero points, then optionally u8
 * quantized scales followed by a single f32 factor.
 */
export function qloraRsDataLayout(
  offset: number,
  blockSize: number,
  blockCount: number,
  zeroPoints: boolean,
  doubleQuant: boolean,
): QnatDataLayout {
  let at = offset;
  const take = (length: number): QnatSection => {
    const s = { offset: at, length };
    at += length;
    return s;
  };
  const layout: QnatDataLayout = {
    byteLength: 0,
    codes: take((blockCount * blockSize) / 2),
    scales: take(blockCount * 4),
  };
  if (zeroPoints) layout.zeroPoints = take(blockCount * 4);
  if (doubleQuant) {
    layout.quantizedScales = take(blockCount);
    layout.scaleFactors = take(blockCount === 0 ? 0 : 4);
  }
  layout.byteLength = at - offset;
  return layout;
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Bytes of one tensor header: name, rank, dims, block size, offset, block count. */
export function qnatTensorHeaderSize(nameBytes: number, rank: number): number {
  return 4 + nameBytes + 4 + rank * 8 + 4 + 8 + 4;
}

/** Bytes of the metadata section for the given UTF-8 lengths. */
export function qnatMetadataSize(nameBytes: number, typeBytes: number): number {
  return 4 + nameBytes + 4 + typeBytes + 1;
}
