/**
 * Every element type of the safetensors format (as the Rust `safetensors` crate defines them),
 * with its width in bits, and conversions to and from float32.
 *
 * Widths and names follow `safetensors/src/tensor.rs` (`Dtype`, `bitsize`). Sub-byte types (`F4`,
 * `F6_*`) count logical elements in the shape; a tensor's bit count must be a whole number of
 * bytes. `F4` packs two E2M1 values per byte, the first element in the low nibble (PyTorch's
 * `float4_e2m1fn_x2`). All multi-byte types are little-endian.
 * @module
 */
import { QuantxError } from "@quantx/core";
import { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from "@quantx/kernels";

/** Width in bits of one element of each safetensors dtype. */
export const SAFETENSORS_DTYPE_BITS: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
});

/** A dtype name as written in a safetensors header (upper case). */
export type SafetensorsDtype =
  | "BOOL"
  | "F4"
  | "F6_E2M3"
  | "F6_E3M2"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "F8_E8M0"
  | "F8_E4M3FNUZ"
  | "F8_E5M2FNUZ"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "C64"
  | "F64"
  | "I64"
  | "U64";

/** All safetensors dtypes, in the order of the Rust crate's `Dtype` enum. */
export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = Object.freeze(
  Object.keys(SAFETENSORS_DTYPE_BITS) as SafetensorsDtype[],
);

/** Dtypes {@link toF32} cannot decode: packed 6-bit floats (packing unspecified) and complex. */
const NOT_DECODABLE = new Set(["F6_E2M3", "F6_E3M2", "C64"]);

/** Dtypes {@link fromF32} can encode. */
const ENCODABLE = new Set(["F32", "F16", "BF16", "F64"]);

/** True when `dtype` is a safetensors dtype name (exact, upper case). */
export function isSafetensorsDtype(dtype: string): dtype is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtype);
}

/** Bits per element of `dtype`; throws a `QuantxError` (`EINVAL`) for an unknown name. */
export function dtypeBits(dtype: string): number {
  if (!isSafetensorsDtype(dtype)) {
    throw new QuantxError(`unknown safetensors dtype "${dtype}"`, { code: "EINVAL" });
  }
  return SAFETENSORS_DTYPE_BITS[dtype];
}

/**
 * Bytes per element of `dtype`: 0.5 for `F4`, 0.75 for `F6_*`, otherwise a whole number.
 * Throws a `QuantxError` (`EINVAL`) for an unknown name.
 */
export function dtypeSize(dtype: string): number {
  return dtypeBits(dtype) / 8;
}

/**
 * Bytes that `elements` values of `dtype` occupy, or `undefined` when that is not a whole number
 * of bytes (an odd number of `F4` values, for example) or not a safe integer.
 */
export function dtypeByteLength(dtype: string, elements: number): number | undefined {
  const bits = dtypeBits(dtype);
  if (!Number.isSafeInteger(elements) || elements < 0) return undefined;
  const total = elements * bits;
  if (!Number.isSafeInteger(total) || total % 8 !== 0) return undefined;
  return total / 8;
}

/** True when {@link toF32} can decode `dtype` (every dtype but `F6_E2M3`, `F6_E3M2`, `C64`). */
export function canDecodeF32(dtype: string): boolean {
  return isSafetensorsDtype(dtype) && !NOT_DECODABLE.has(dtype);
}

/** True when {@link fromF32} can encode `dtype` (`F32`, `F16`, `BF16`, `F64`). */
export function canEncodeF32(dtype: string): boolean {
  return ENCODABLE.has(dtype);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function lut(fn: (b: number) => number, size = 256): Float32Array {
  const t = new Float32Array(size);
  for (let b = 0; b < size; b++) t[b] = fn(b);
  return t;
}

/** float8 e4m3 "fn" (PyTorch `float8_e4m3fn`): bias 7, no infinities, NaN = S.1111.111. */
const E4M3 = lut((b) => {
  const s = b & 0x80 ? -1 : 1, e = (b >> 3) & 15, m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * (m / 8) * 2 ** -6 : s * (1 + m / 8) * 2 ** (e - 7);
});
/** float8 e5m2: IEEE-like, exactly the high byte of an fp16 (NaN payloads kept as fp16's are). */
const E5M2 = lut((b) => fp16ToFp32(b << 8));
/** float8 e4m3 "fnuz": bias 8, 0x80 is the only NaN, no infinities, no negative zero. */
const E4M3FNUZ = lut((b) => {
  if (b === 0x80) return NaN;
  const s = b & 0x80 ? -1 : 1, e = (b >> 3) & 15, m = b & 7;
  return e === 0 ? s * (m / 8) * 2 ** -7 : s * (1 + m / 8) * 2 ** (e - 8);
});
/** float8 e5m2 "fnuz": bias 16, 0x80 is the only NaN, no infinities, no negative zero. */
const E5M2FNUZ = lut((b) => {
  if (b === 0x80) return NaN;
  const s = b & 0x80 ? -1 : 1, e = (b >> 2) & 31, m = b & 3;
  return e === 0 ? s * (m / 4) * 2 ** -15 : s * (1 + m / 4) * 2 ** (e - 16);
});
/** float8 e8m0 (OCP MX scale, PyTorch `float8_e8m0fnu`): 2^(b-127), 0xFF = NaN. */
const E8M0 = lut((b) => (b === 255 ? NaN : 2 ** (b - 127)));
/** float4 e2m1 (OCP MXFP4): 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives. */
const E2M1 = lut((b) => {
  const s = b & 8 ? -1 : 1, e = (b >> 1) & 3, m = b & 1;
  return e === 0 ? s * m * 0.5 : s * (1 + m / 2) * 2 ** (e - 1);
}, 16);

const TWO_32 = 4294967296;

/** int64 (as high signed and low unsigned 32-bit halves) to the nearest float32, ties to even. */
function int64ToF32(hi: number, lo: number, signed: boolean): number {
  // |value| < 2^53: exact as a double, so storing it in a Float32Array rounds exactly once.
  if (signed ? hi >= -0x200000 && hi < 0x200000 : hi < 0x200000) return hi * TWO_32 + lo;
  let v = (BigInt(hi) << 32n) | BigInt(lo);
  const negative = v < 0n;
  if (negative) v = -v;
  const shift = v.toString(2).length - 24;
  let q = v >> BigInt(shift);
  const r = v - (q << BigInt(shift));
  const half = 1n << BigInt(shift - 1);
  if (r > half || (r === half && (q & 1n) === 1n)) q += 1n;
  const x = Number(q) * 2 ** shift;
  return negative ? -x : x;
}

/** A little-endian typed view of `bytes` when the host allows it without a copy, else undefined. */
function view<T>(
  bytes: Uint8Array,
  size: number,
  ctor: new (buffer: ArrayBufferLike, offset: number, length: number) => T,
): T | undefined {
  if (!LITTLE_ENDIAN || bytes.byteOffset % size !== 0) return undefined;
  return new ctor(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / size));
}

/**
 * Decode `count` elements of `dtype` from `bytes` into `dst[dstOffset..]`. For sub-byte types,
 * `skip` elements at the start of `bytes` are skipped (`F4`: 0 or 1). `bytes` must hold them.
 * Internal building block of {@link toF32} and the readers' chunked `readF32`.
 */
export function decodeF32Into(
  dtype: string,
  bytes: Uint8Array,
  dst: Float32Array,
  dstOffset: number,
  count: number,
  skip = 0,
): void {
  const need = dtypeByteLength(dtype, count + skip) ??
    Math.ceil(((count + skip) * dtypeBits(dtype)) / 8);
  if (bytes.byteLength < need) {
    throw new QuantxError(
      `${count} ${dtype} values need ${need} bytes, got ${bytes.byteLength}`,
      { code: "EINVAL" },
    );
  }
  if (dstOffset + count > dst.length) {
    throw new QuantxError(`destination too small for ${count} values`, { code: "EINVAL" });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const o = dstOffset;
  switch (dtype) {
    case "F32": {
      const v = view(bytes, 4, Float32Array);
      if (v) dst.set(v.subarray(0, count), o);
      else for (let i = 0; i < count; i++) dst[o + i] = dv.getFloat32(4 * i, true);
      return;
    }
    case "F64":
      for (let i = 0; i < count; i++) dst[o + i] = dv.getFloat64(8 * i, true);
      return;
    case "F16": {
      const v = view(bytes, 2, Uint16Array);
      if (v) { for (let i = 0; i < count; i++) dst[o + i] = fp16ToFp32(v[i]); }
      else for (let i = 0; i < count; i++) dst[o + i] = fp16ToFp32(dv.getUint16(2 * i, true));
      return;
    }
    case "BF16": {
      const v = view(bytes, 2, Uint16Array);
      if (v) {
        const out = new Uint32Array(dst.buffer, dst.byteOffset + 4 * o, count);
        for (let i = 0; i < count; i++) out[i] = v[i] << 16;
      } else {
        for (let i = 0; i < count; i++) dst[o + i] = bf16ToFp32(dv.getUint16(2 * i, true));
      }
      return;
    }
    case "BOOL":
      for (let i = 0; i < count; i++) dst[o + i] = bytes[i] ? 1 : 0;
      return;
    case "U8":
      for (let i = 0; i < count; i++) dst[o + i] = bytes[i];
      return;
    case "I8":
      for (let i = 0; i < count; i++) dst[o + i] = dv.getInt8(i);
      return;
    case "U16":
      for (let i = 0; i < count; i++) dst[o + i] = dv.getUint16(2 * i, true);
      return;
    case "I16":
      for (let i = 0; i < count; i++) dst[o + i] = dv.getInt16(2 * i, true);
      return;
    case "U32":
      for (let i = 0; i < count; i++) dst[o + i] = dv.getUint32(4 * i, true);
      return;
    case "I32":
      for (let i = 0; i < count; i++) dst[o + i] = dv.getInt32(4 * i, true);
      return;
    case "U64":
    case "I64": {
      const signed = dtype === "I64";
      for (let i = 0; i < count; i++) {
        const lo = dv.getUint32(8 * i, true);
        const hi = signed ? dv.getInt32(8 * i + 4, true) : dv.getUint32(8 * i + 4, true);
        dst[o + i] = int64ToF32(hi, lo, signed);
      }
      return;
    }
    case "F8_E4M3":
    case "F8_E5M2":
    case "F8_E4M3FNUZ":
    case "F8_E5M2FNUZ":
    case "F8_E8M0": {
      const t = dtype === "F8_E4M3"
        ? E4M3
        : dtype === "F8_E5M2"
        ? E5M2
        : dtype === "F8_E4M3FNUZ"
        ? E4M3FNUZ
        : dtype === "F8_E5M2FNUZ"
        ? E5M2FNUZ
        : E8M0;
      for (let i = 0; i < count; i++) dst[o + i] = t[bytes[i]];
      return;
    }
    case "F4":
      for (let i = 0; i < count; i++) {
        const k = i + skip;
        const b = bytes[k >> 1];
        dst[o + i] = E2M1[k & 1 ? b >> 4 : b & 15];
      }
      return;
    default:
      if (isSafetensorsDtype(dtype)) {
        throw new QuantxError(`cannot convert ${dtype} to float32`, { code: "EUNSUPPORTED" });
      }
      dtypeBits(dtype); // throws for an unknown name
  }
}

/**
 * Decode little-endian `bytes` of `dtype` to float32: floats exactly or rounded to nearest even
 * (`F64`), integers to the nearest float32, `BOOL` to 0/1, `F8_*` and `F4` exactly. The element
 * count is the bytes' worth of whole elements.
 *
 * @example
 * ```ts
 * import { toF32 } from "@quantx/safetensors";
 * console.log(toF32("BF16", new Uint8Array([0x80, 0x3f]))); // Float32Array [1]
 * ```
 */
export function toF32(dtype: string, bytes: Uint8Array): Float32Array {
  const count = Math.floor((bytes.byteLength * 8) / dtypeBits(dtype));
  const out = new Float32Array(count);
  decodeF32Into(dtype, bytes, out, 0, count);
  return out;
}

/**
 * Encode float32 values as little-endian `F32`, `F16`, `BF16` (ggml's rounding: nearest even,
 * NaN kept quiet) or `F64`. Throws a `QuantxError` (`EUNSUPPORTED`) for other dtypes.
 *
 * @example
 * ```ts
 * import { fromF32 } from "@quantx/safetensors";
 * console.log(fromF32("F16", new Float32Array([1]))); // Uint8Array [0, 60]
 * ```
 */
export function fromF32(dtype: string, f32: Float32Array): Uint8Array {
  const n = f32.length;
  switch (dtype) {
    case "F32": {
      if (LITTLE_ENDIAN) return new Uint8Array(f32.slice().buffer);
      const out = new Uint8Array(4 * n);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setFloat32(4 * i, f32[i], true);
      return out;
    }
    case "F64": {
      const out = new Uint8Array(8 * n);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setFloat64(8 * i, f32[i], true);
      return out;
    }
    case "F16":
    case "BF16": {
      const enc = dtype === "F16" ? fp32ToFp16 : fp32ToBf16;
      const out = new Uint8Array(2 * n);
      if (LITTLE_ENDIAN) {
        const u16 = new Uint16Array(out.buffer);
        for (let i = 0; i < n; i++) u16[i] = enc(f32[i]);
      } else {
        const dv = new DataView(out.buffer);
        for (let i = 0; i < n; i++) dv.setUint16(2 * i, enc(f32[i]), true);
      }
      return out;
    }
    default:
      dtypeBits(dtype);
      throw new QuantxError(`cannot encode float32 as ${dtype} (F32, F16, BF16 or F64 only)`, {
        code: "EUNSUPPORTED",
      });
  }
}
