/**
 * Half-precision conversions exactly as ggml does them: fp32 -> fp16 rounds to nearest even and
 * keeps subnormals (NaN becomes 0x7E00 with its sign); fp32 -> bf16 rounds to nearest even (NaN is
 * made quiet). fp16 -> fp32 goes through a 64 Ki-entry table.
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bit pattern of a float32. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The float32 with the given bit pattern. */
export function f32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

/** fp32 -> fp16 bits, ggml's `ggml_compute_fp32_to_fp16` (round to nearest even). */
export function fp32ToFp16(x: number): number {
  f32[0] = x;
  const w = u32[0];
  const shl1w = (w << 1) >>> 0;
  const sign = (w >>> 16) & 0x8000;
  if (shl1w > 0xff000000) return sign | 0x7e00;
  // base = (|f| * 2^112) * 2^-110, in float32
  f32[0] = Math.fround(
    Math.fround(Math.abs(f32[0]) * 5.192296858534828e33) * 7.703719777548943e-34,
  );
  const base = f32[0];
  let bias = shl1w & 0xff000000;
  if (bias >>> 0 < 0x71000000) bias = 0x71000000;
  u32[0] = ((bias >>> 1) + 0x07800000) >>> 0;
  f32[0] = Math.fround(f32[0] + base);
  const bits = u32[0];
  const expBits = (bits >>> 13) & 0x7c00;
  const mantissaBits = bits & 0x0fff;
  return sign | (expBits + mantissaBits);
}

/** fp16 bits -> fp32 value, exact. */
export function fp16ToFp32Compute(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 5.960464477539063e-8; // 2^-24
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** All 65536 fp16 values as float32, indexed by bit pattern. */
export const FP16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = fp16ToFp32Compute(h);
  // keep NaN payloads as ggml does (bit-exact widening)
  const tb = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    if (((h >>> 10) & 0x1f) === 31 && (h & 0x3ff)) {
      tb[h] = (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
    }
  }
  return t;
})();

/** fp16 bits -> fp32 value (table lookup). */
export function fp16ToFp32(h: number): number {
  return FP16_TABLE[h & 0xffff];
}

/** fp32 -> bf16 bits, ggml's `ggml_compute_fp32_to_bf16`. */
export function fp32ToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bits -> fp32 value, exact. */
export function bf16ToFp32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}
