/**
 * QNAT double-quantized scales (flag bit 1): each group of 256 consecutive blocks shares one
 * float32 factor and every block keeps one unsigned byte.
 *
 * - `factor[g] = float32(max(scale[i] for i in group g) / 255)`
 * - `q[i] = factor[g] > 0 ? min(255, floor(float32(scale[i] / factor[g]) + 0.5)) : 0`
 * - decoded `scale[i] = float32(q[i] * factor[g])`
 *
 * Scales are absmax values (never negative), so the map is linear and unsigned. The NF4 codes are
 * computed from the exact scales, as bitsandbytes does for its nested absmax. In a file with zero
 * points too, a block whose byte rounds to 0 while its center is not 0 stores 1 instead, so the
 * center survives (see encode.ts).
 * @module
 */
import { QNAT_SCALE_GROUP } from "./format.ts";

/** Quantized scales: one byte per block and one float32 factor per 256 blocks. */
export interface QnatQuantizedScales {
  /** One byte per block. */
  quantized: Uint8Array;
  /** One factor per group of 256 blocks. */
  factors: Float32Array;
}

/** Quantize per-block scales (non-negative float32) to bytes plus per-group factors. */
export function quantizeQnatScales(scales: Float32Array): QnatQuantizedScales {
  const blocks = scales.length;
  const groups = Math.ceil(blocks / QNAT_SCALE_GROUP);
  const quantized = new Uint8Array(blocks);
  const factors = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    const start = g * QNAT_SCALE_GROUP, end = Math.min(blocks, start + QNAT_SCALE_GROUP);
    let max = 0;
    for (let i = start; i < end; i++) if (scales[i] > max) max = scales[i];
    const factor = Math.fround(max / 255);
    factors[g] = factor;
    if (!(factor > 0)) continue;
    for (let i = start; i < end; i++) {
      const q = Math.floor(Math.fround(scales[i] / factor) + 0.5);
      quantized[i] = q > 255 ? 255 : q > 0 ? q : 0;
    }
  }
  return { quantized, factors };
}

/**
 * Decode `count` scales starting at block `first` from quantized bytes (`quantized[0]` is block
 * `first`) and the factors of the groups they fall in (`factors[0]` is group
 * `floor(first / 256)`).
 */
export function dequantizeQnatScales(
  quantized: Uint8Array,
  factors: Float32Array,
  first = 0,
  count = quantized.length,
): Float32Array {
  const out = new Float32Array(count);
  const g0 = Math.floor(first / QNAT_SCALE_GROUP);
  for (let i = 0; i < count; i++) {
    const g = Math.floor((first + i) / QNAT_SCALE_GROUP) - g0;
    out[i] = Math.fround(quantized[i] * factors[g]);
  }
  return out;
}
