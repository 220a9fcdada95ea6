/**
 * Whole-array float conversions between float32 and the 16-bit float formats (IEEE fp16, bf16),
 * bit-identical to libggml's `ggml_fp32_to_fp16_row`, `ggml_fp32_to_bf16_row_ref` and their
 * inverses: fp32 -> fp16 rounds to nearest even and keeps subnormals (NaN becomes 0x7E00 with its
 * sign); fp32 -> bf16 rounds to nearest even (NaN is made quiet). Widening is exact and keeps NaN
 * payloads (made quiet, as libggml does). The hot loops work on the integer bit patterns through typed-array views.
 * @module
 */

/** True on little-endian hosts, where typed-array views match the little-endian file layout. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const SCRATCH_F = new Float32Array(1);
const SCRATCH_U = new Uint32Array(SCRATCH_F.buffer);

/**
 * fp32 bits -> fp16 bits, round to nearest even with subnormals kept, NaN -> 0x7E00 | sign:
 * the same result as ggml's `ggml_compute_fp32_to_fp16`, in integer arithmetic.
 */
export function f32BitsToF16(w: number): number {
  const sign = (w >>> 16) & 0x8000;
  const a = w & 0x7fffffff;
  if (a >= 0x38800000) {
    // normal fp16 range (or above): re-bias, round the dropped 13 bits to nearest even; a carry
    // moves into the exponent, and from 65520 up into infinity
    if (a < 0x47800000) return sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
    return a > 0x7f800000 ? sign | 0x7e00 : sign | 0x7c00;
  }
  // below 2^-14: an fp16 subnormal m * 2^-24 with m = |x| * 2^24 rounded to nearest even
  const e = a >>> 23;
  const shift = 126 - (e === 0 ? 1 : e);
  if (shift > 25) return sign;
  const mant = e === 0 ? a : (a & 0x7fffff) | 0x800000;
  const q = mant >>> shift;
  const rem = mant - (q << shift);
  const half = 1 << (shift - 1);
  return sign | (q + (rem > half || (rem === half && (q & 1) === 1) ? 1 : 0));
}

/** fp32 value -> fp16 bits, as {@link f32BitsToF16}. */
export function f32ToF16(x: number): number {
  SCRATCH_F[0] = x;
  return f32BitsToF16(SCRATCH_U[0]);
}

/** fp32 bits -> bf16 bits, ggml's `ggml_compute_fp32_to_bf16` (nearest even; NaN made quiet). */
export function f32BitsToBf16(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * All 65536 fp16 values as float32 bit patterns, as libggml widens them: exact, NaN payloads kept
 * and made quiet (its conversion goes through a float multiply).
 */
export const F16_TO_F32_BITS: Uint32Array = (() => {
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let man = h & 0x3ff;
    let bits: number;
    if (exp === 31) bits = 0x7f800000 | (man << 13) | (man !== 0 ? 0x400000 : 0);
    else if (exp !== 0) bits = ((exp + 112) << 23) | (man << 13);
    else if (man === 0) bits = 0;
    else {
      // subnormal: normalize
      let e = 113;
      while ((man & 0x400) === 0) {
        man <<= 1;
        e--;
      }
      bits = (e << 23) | ((man & 0x3ff) << 13);
    }
    t[h] = (sign | bits) >>> 0;
  }
  return t;
})();

/** All 65536 fp16 values as float32 numbers, indexed by bit pattern. */
export const F16_TO_F32: Float32Array = new Float32Array(F16_TO_F32_BITS.buffer);

function check(name: string, count: number, bytes: number, width: number, srcIsFloat: boolean) {
  if (bytes < count * width) {
    throw new RangeError(
      `${name}: ${srcIsFloat ? "destination" : "source"} has ${bytes} bytes, ` +
        `${count} values need ${count * width}`,
    );
  }
}

/** float32 values -> fp16 bytes (little-endian, 2 per value) in `dst`. */
export function quantizeF16(src: Float32Array, dst: Uint8Array): void {
  const n = src.length;
  check("quantizeF16", n, dst.length, 2, true);
  const bits = new Int32Array(src.buffer, src.byteOffset, n);
  if (LE && (dst.byteOffset & 1) === 0) {
    const out = new Uint16Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0; i < n; i++) {
      // the normal range inline (int32 arithmetic), the rest through f32BitsToF16
      const w = bits[i];
      const a = w & 0x7fffffff;
      const h = ((w >>> 16) & 0x8000) | ((a - 0x37fff001 + ((a >>> 13) & 1)) >>> 13);
      out[i] = (a - 0x38800000) >>> 0 < 0x0f000000 ? h : f32BitsToF16(w);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const h = f32BitsToF16(bits[i]);
      dst[2 * i] = h;
      dst[2 * i + 1] = h >>> 8;
    }
  }
}

/** fp16 bytes (little-endian) -> float32 values in `dst` (exact, NaN payloads kept). */
export function dequantizeF16(src: Uint8Array, dst: Float32Array): void {
  const n = dst.length;
  check("dequantizeF16", n, src.length, 2, false);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, n);
  const t = F16_TO_F32_BITS;
  if (LE && (src.byteOffset & 1) === 0) {
    const h = new Uint16Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = t[h[i]];
  } else {
    for (let i = 0; i < n; i++) out[i] = t[src[2 * i] | (src[2 * i + 1] << 8)];
  }
}

/** float32 values -> bf16 bytes (little-endian, 2 per value) in `dst`. */
export function quantizeBF16(src: Float32Array, dst: Uint8Array): void {
  const n = src.length;
  check("quantizeBF16", n, dst.length, 2, true);
  const bits = new Int32Array(src.buffer, src.byteOffset, n);
  if (LE && (dst.byteOffset & 1) === 0) {
    const out = new Uint16Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0; i < n; i++) {
      // int32 arithmetic: a non-NaN u + 0x8000 cannot overflow
      const u = bits[i];
      out[i] = (u & 0x7fffffff) > 0x7f800000
        ? (u >>> 16) | 64
        : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const h = f32BitsToBf16(bits[i]);
      dst[2 * i] = h;
      dst[2 * i + 1] = h >>> 8;
    }
  }
}

/** bf16 bytes (little-endian) -> float32 values in `dst` (exact). */
export function dequantizeBF16(src: Uint8Array, dst: Float32Array): void {
  const n = dst.length;
  check("dequantizeBF16", n, src.length, 2, false);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, n);
  if (LE && (src.byteOffset & 1) === 0) {
    const h = new Uint16Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = h[i] << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = (src[2 * i] << 16) | (src[2 * i + 1] << 24);
  }
}

/** float32 values -> their little-endian bytes in `dst` (a bit-exact copy). */
export function quantizeF32(src: Float32Array, dst: Uint8Array): void {
  const n = src.length;
  check("quantizeF32", n, dst.length, 4, true);
  const bytes = new Uint8Array(src.buffer, src.byteOffset, 4 * n);
  if (LE) dst.set(bytes);
  else {
    for (let i = 0; i < 4 * n; i += 4) {
      dst[i] = bytes[i + 3];
      dst[i + 1] = bytes[i + 2];
      dst[i + 2] = bytes[i + 1];
      dst[i + 3] = bytes[i];
    }
  }
}

/** Little-endian float32 bytes -> float32 values in `dst` (a bit-exact copy). */
export function dequantizeF32(src: Uint8Array, dst: Float32Array): void {
  const n = dst.length;
  check("dequantizeF32", n, src.length, 4, false);
  const out = new Uint8Array(dst.buffer, dst.byteOffset, 4 * n);
  if (LE) out.set(src.subarray(0, 4 * n));
  else {
    for (let i = 0; i < 4 * n; i += 4) {
      out[i] = src[i + 3];
      out[i + 1] = src[i + 2];
      out[i + 2] = src[i + 1];
      out[i + 3] = src[i];
    }
  }
}

/** float32 values -> fp16 bit patterns (a new Uint16Array). */
export function f32ArrayToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(bits[i]);
  return out;
}

/** fp16 bit patterns -> float32 values (a new Float32Array, exact). */
export function f16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const o = new Uint32Array(out.buffer);
  const t = F16_TO_F32_BITS;
  for (let i = 0; i < src.length; i++) o[i] = t[src[i]];
  return out;
}

/** float32 values -> bf16 bit patterns (a new Uint16Array). */
export function f32ArrayToBf16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16(bits[i]);
  return out;
}

/** bf16 bit patterns -> float32 values (a new Float32Array, exact). */
export function bf16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const o = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) o[i] = src[i] << 16;
  return out;
}
