/**
 * Decoding QNAT NF4 data to float32: `float32(codebook[code] * scale)`, or with zero points
 * `float32(float32(codebook[code] + zeroPoint) * scale)` (qlora-rs's formula).
 * @module
 */
import { NF4_CODEBOOK } from "@quantx/kernels";

const LEVELS = Float32Array.from(NF4_CODEBOOK);

/**
 * Decode `count` elements starting at element `start` of a tensor.
 *
 * @param codes packed codes (low nibble first) whose byte 0 holds element `codeBase`
 *   (`codeBase` even)
 * @param scales per-block scales whose entry 0 is block `floor(start / blockSize)`
 * @param zeroPoints per-block zero points aligned like `scales`, or undefined
 */
export function decodeQnatNf4(
  codes: Uint8Array,
  codeBase: number,
  scales: Float32Array,
  zeroPoints: Float32Array | undefined,
  blockSize: number,
  start: number,
  count: number,
): Float32Array {
  const out = new Float32Array(count);
  const firstBlock = Math.floor(start / blockSize);
  for (let i = 0; i < count; i++) {
    const e = start + i;
    const byte = codes[(e - codeBase) >> 1];
    const code = e & 1 ? byte >> 4 : byte & 0x0f;
    const b = Math.floor(e / blockSize) - firstBlock;
    const level = zeroPoints ? Math.fround(LEVELS[code] + zeroPoints[b]) : LEVELS[code];
    out[i] = level * scales[b];
  }
  return out;
}
