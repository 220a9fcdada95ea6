/**
 * WebGPU quantize / dequantize for the 32-element ggml block types q4_0 and q8_0, chunked so no
 * binding exceeds the device limit. Output bytes equal libggml's reference quantizer; dequantized
 * values equal libggml / gguf-py bit for bit.
 * @module
 */
import { FormatError } from "@quantx/core";
import {
  block32DequantizeWgsl,
  type Block32Format,
  block32QuantizeWgsl,
} from "./shaders/block32.ts";
import { Q4_0_FORMAT } from "./shaders/q4_0.ts";
import { Q8_0_FORMAT } from "./shaders/q8_0.ts";
import { bytesOf, type Chunk, type KernelEnv, runJob, splitRanges } from "./runner.ts";

/** The 32-element block types the WebGPU backend quantizes. */
export type Block32Type = "q4_0" | "q8_0";

/** Formats by type name. */
export const BLOCK32_FORMATS: Record<Block32Type, Block32Format> = {
  q4_0: Q4_0_FORMAT,
  q8_0: Q8_0_FORMAT,
};

function format(type: string): Block32Format {
  const f = BLOCK32_FORMATS[type as Block32Type];
  if (!f) throw new RangeError(`webgpu: ${type} is not a 32-element block type (q4_0, q8_0)`);
  return f;
}

/** Quantizes `src` (a multiple of 32 values) to `type` blocks on the GPU. */
export async function quantizeBlock32(
  env: KernelEnv,
  type: Block32Type,
  src: Float32Array,
): Promise<Uint8Array> {
  const f = format(type);
  if (src.length % 32 !== 0) {
    throw new FormatError(`${src.length} values is not a multiple of the ${type} block size 32`);
  }
  const nb = src.length / 32;
  const out = new Uint8Array(nb * f.bytes);
  if (nb === 0) return out;
  const kernel = await env.cache.get(
    `quantize_${type}`,
    () => block32QuantizeWgsl(f),
    ["quantize"],
    1,
    1,
  );
  // the float input (128 bytes per block) is the largest binding; 64 blocks per workgroup
  const chunks: Chunk[] = splitRanges(nb, Math.floor(env.chunkBytes / 128), 64).map((
    [b0, b1],
  ) => ({
    inputs: [bytesOf(src.subarray(b0 * 32, b1 * 32))],
    outputSizes: [(b1 - b0) * f.bytes],
    params: [b1 - b0],
    groups: [Math.ceil((b1 - b0) / 64)],
    receive: ([o]) => out.set(o, b0 * f.bytes),
  }));
  await runJob(env, { label: `quantize ${type}`, kernel, chunks });
  return out;
}

/** Dequantizes `count` values (a multiple of 32) of `type` blocks on the GPU. */
export async function dequantizeBlock32(
  env: KernelEnv,
  type: Block32Type,
  data: Uint8Array,
  count: number,
): Promise<Float32Array> {
  const f = format(type);
  checkCount(type, data, count, 32, f.bytes);
  const nb = count / 32;
  const out = new Float32Array(count);
  if (nb === 0) return out;
  const kernel = await env.cache.get(
    `dequantize_${type}`,
    () => block32DequantizeWgsl(f),
    ["dequantize"],
    1,
    1,
  );
  const outBytes = bytesOf(out);
  const chunks: Chunk[] = splitRanges(nb, Math.floor(env.chunkBytes / 128), 8).map((
    [b0, b1],
  ) => ({
    inputs: [data.subarray(b0 * f.bytes, b1 * f.bytes)],
    outputSizes: [(b1 - b0) * 128],
    params: [(b1 - b0) * 8],
    groups: [Math.ceil(((b1 - b0) * 8) / 256)],
    receive: ([o]) => outBytes.set(o, b0 * 128),
  }));
  await runJob(env, { label: `dequantize ${type}`, kernel, chunks });
  return out;
}

/**
 * Checks that `count` is a whole number of `blockSize` blocks and that `data` holds exactly
 * those blocks; throws `FormatError` otherwise.
 */
export function checkCount(
  type: string,
  data: Uint8Array,
  count: number,
  blockSize: number,
  typeSize: number,
): void {
  if (!Number.isSafeInteger(count) || count < 0 || count % blockSize !== 0) {
    throw new FormatError(
      `${count} values is not a multiple of the ${type} block size ${blockSize}`,
    );
  }
  const need = (count / blockSize) * typeSize;
  if (data.byteLength !== need) {
    throw new FormatError(`${type}: ${count} values need ${need} bytes, got ${data.byteLength}`, {
      offset: Math.min(need, data.byteLength),
    });
  }
}
