/**
 * Quantizing tensor values for QNAT: NF4 codes through `@quantx/kernels` (repacked to QNAT's
 * low-nibble-first order), one absmax scale per block, and optional per-block zero points.
 *
 * Zero points (flag bit 0) make each block asymmetric: with `center = float32(min/2 + max/2)`
 * of the block, the block's values minus `center` are NF4-quantized by the kernel (codes and
 * absmax `scale`). A constant block of value `v != 0` gets `scale = |v|` and code 7 (codebook 0).
 * Once the tensor's scales are final (after double quantization, when used), each block's
 * `zeroPoint = float32(center / storedScale)` (0 when the stored scale is 0). Decoding is
 * qlora-rs's formula `float32(float32(codebook[code] + zeroPoint) * storedScale)`, which gives
 * `codebook[code] * storedScale + center` up to float32 rounding.
 * @module
 */
import { quantizeNf4 } from "@quantx/kernels";

/** NF4 code whose codebook value is 0. */
export const NF4_ZERO_CODE = 7;

/** One quantized run of whole blocks. */
export interface QnatEncoded {
  /** Packed codes, first element of each pair in the LOW nibble. */
  codes: Uint8Array;
  /** One absmax scale per block. */
  scales: Float32Array;
  /** Per-block centers (`min/2 + max/2`), when zero points are asked for. */
  centers?: Float32Array;
}

/** Swap the two nibbles of every byte: bitsandbytes' high-first order <-> QNAT's low-first. */
export function swapNibbles(codes: Uint8Array): Uint8Array {
  const out = new Uint8Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const b = codes[i];
    out[i] = ((b & 0x0f) << 4) | (b >> 4);
  }
  return out;
}

/**
 * Quantize `values` (whole blocks of `blockSize`, the last one may be partial; `blockSize` even)
 * to QNAT codes and scales, with the block centers needed for zero points when `zeroPoints` is set.
 */
export function encodeQnatBlocks(
  values: Float32Array,
  blockSize: number,
  zeroPoints: boolean,
): QnatEncoded {
  if (!zeroPoints) {
    const { codes, absmax } = quantizeNf4(values, blockSize);
    return { codes: swapNibbles(codes), scales: absmax };
  }
  const n = values.length;
  const blocks = Math.ceil(n / blockSize);
  const centers = new Float32Array(blocks);
  const shifted = new Float32Array(n);
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize, end = Math.min(n, start + blockSize);
    let min = values[start], max = values[start];
    for (let i = start + 1; i < end; i++) {
      const v = values[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const center = Math.fround(Math.fround(min * 0.5) + Math.fround(max * 0.5));
    centers[b] = center;
    for (let i = start; i < end; i++) shifted[i] = values[i] - center;
  }
  const { codes: high, absmax } = quantizeNf4(shifted, blockSize);
  const codes = swapNibbles(high);
  for (let b = 0; b < blocks; b++) {
    const center = centers[b];
    if (absmax[b] === 0 && center !== 0) {
      absmax[b] = Math.abs(center);
      const start = b * blockSize, end = Math.min(n, start + blockSize);
      for (let i = start; i < end; i++) {
        const byte = i >> 1;
        codes[byte] = i & 1
          ? (codes[byte] & 0x0f) | (NF4_ZERO_CODE << 4)
          : (codes[byte] & 0xf0) | NF4_ZERO_CODE;
      }
    }
  }
  return { codes, scales: absmax, centers };
}

/** Zero points `float32(center / scale)` (0 where the stored scale is 0). */
export function qnatZeroPoints(centers: Float32Array, scales: Float32Array): Float32Array {
  const zp = new Float32Array(centers.length);
  for (let b = 0; b < centers.length; b++) zp[b] = scales[b] > 0 ? centers[b] / scales[b] : 0;
  return zp;
}
