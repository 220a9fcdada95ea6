/**
 * WebGPU NF4 (bitsandbytes 4-bit NormalFloat) quantization and dequantization over a flattened
 * tensor, chunked on whole blocks. Codes and absmax equal bitsandbytes' CUDA kernel (and QuantX's
 * CPU `quantizeNf4`) bit for bit; dequantized values are `float32(codebook[code] * absmax)`.
 * @module
 */
import { FormatError } from "@quantx/core";
import { nf4DequantizeWgsl, nf4QuantizeWgsl } from "./shaders/nf4.ts";
import { bytesOf, type Chunk, type KernelEnv, runJob, splitRanges } from "./runner.ts";

/** Packed NF4 codes (first element in the high nibble) and one float32 absmax per block. */
export interface Nf4Quantized {
  codes: Uint8Array;
  absmax: Float32Array;
}

/** Checks an NF4 block size: an even integer from 2 to 2^20. */
export function checkNf4BlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0 || blockSize > 1 << 20) {
    throw new RangeError(`nf4: block size ${blockSize} is not an even integer in [2, 2^20]`);
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Elements per chunking unit: whole blocks and whole words of codes. */
function unitOf(blockSize: number): number {
  return (blockSize * 8) / gcd(blockSize, 8);
}

/** Quantizes `src` (flattened, any length) to NF4 with `blockSize` values per absmax. */
export async function quantizeNf4Gpu(
  env: KernelEnv,
  src: Float32Array,
  blockSize = 64,
): Promise<Nf4Quantized> {
  checkNf4BlockSize(blockSize);
  const n = src.length;
  const codes = new Uint8Array(Math.ceil(n / 2));
  const absmax = new Float32Array(Math.ceil(n / blockSize));
  if (n === 0) return { codes, absmax };
  const kernel = await env.cache.get(
    "quantize_nf4",
    nf4QuantizeWgsl,
    ["absmax_pass", "codes_pass"],
    1,
    3,
  );
  const absBytes = bytesOf(absmax);
  const ranges = splitRanges(n, Math.floor(env.chunkBytes / 4), unitOf(blockSize));
  let maxBlocks = 0;
  const chunks: Chunk[] = ranges.map(([e0, e1]) => {
    const len = e1 - e0, blocks = Math.ceil(len / blockSize), words = Math.ceil(len / 8);
    maxBlocks = Math.max(maxBlocks, blocks);
    return {
      inputs: [bytesOf(src.subarray(e0, e1))],
      outputSizes: [blocks * 4, Math.ceil(len / 2)],
      params: [len, 0, blockSize, blocks, words],
      groups: [blocks, Math.ceil(words / 256)],
      receive: ([a, c]) => {
        absBytes.set(a, (e0 / blockSize) * 4);
        codes.set(c, e0 / 2);
      },
    };
  });
  await runJob(env, { label: "quantize nf4", kernel, scratch: [maxBlocks * 4], chunks });
  return { codes, absmax };
}

/** Dequantizes `count` NF4 values from packed `codes` and per-block `absmax`. */
export async function dequantizeNf4Gpu(
  env: KernelEnv,
  codes: Uint8Array,
  absmax: Float32Array,
  count: number,
  blockSize = 64,
): Promise<Float32Array> {
  checkNf4BlockSize(blockSize);
  checkNf4Lengths(codes, absmax, count, blockSize);
  const out = new Float32Array(count);
  if (count === 0) return out;
  const kernel = await env.cache.get("dequantize_nf4", nf4DequantizeWgsl, ["dequantize"], 2, 1);
  const outBytes = bytesOf(out);
  const ranges = splitRanges(count, Math.floor(env.chunkBytes / 4), unitOf(blockSize));
  const chunks: Chunk[] = ranges.map(([e0, e1]) => ({
    inputs: [
      codes.subarray(e0 / 2, Math.ceil(e1 / 2)),
      bytesOf(absmax.subarray(e0 / blockSize, Math.ceil(e1 / blockSize))),
    ],
    outputSizes: [(e1 - e0) * 4],
    params: [e1 - e0, 0, blockSize],
    groups: [Math.ceil(Math.ceil((e1 - e0) / 8) / 256)],
    receive: ([o]) => outBytes.set(o, e0 * 4),
  }));
  await runJob(env, { label: "dequantize nf4", kernel, chunks });
  return out;
}

/** Throws `FormatError` unless `codes` / `absmax` have the lengths `count` values need. */
export function checkNf4Lengths(
  codes: Uint8Array,
  absmax: Float32Array,
  count: number,
  blockSize: number,
): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new FormatError(`nf4: bad value count ${count}`);
  }
  if (codes.byteLength !== Math.ceil(count / 2)) {
    throw new FormatError(
      `nf4: ${count} values need ${Math.ceil(count / 2)} code bytes, got ${codes.byteLength}`,
    );
  }
  if (absmax.length !== Math.ceil(count / blockSize)) {
    throw new FormatError(
      `nf4: ${count} values in blocks of ${blockSize} need ${
        Math.ceil(count / blockSize)
      } absmax values, got ${absmax.length}`,
    );
  }
}
