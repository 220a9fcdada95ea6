/**
 * WebGPU dequantization of the k-quant types q4_k, q5_k and q6_k, chunked by super-blocks.
 * Values equal libggml's `dequantize_row_*` and gguf-py's dequantizer bit for bit.
 * @module
 */
import { checkCount } from "./block32.ts";
import { KQUANT_TYPE_SIZE, kquantDequantizeWgsl, type KQuantType } from "./shaders/kquants.ts";
import { bytesOf, type Chunk, type KernelEnv, runJob, splitRanges } from "./runner.ts";

export type { KQuantType } from "./shaders/kquants.ts";

/** True for the k-quant types this module dequantizes. */
export function isKQuantType(type: string): type is KQuantType {
  return type in KQUANT_TYPE_SIZE;
}

/** Dequantizes `count` values (a multiple of 256) of `type` super-blocks on the GPU. */
export async function dequantizeKQuant(
  env: KernelEnv,
  type: KQuantType,
  data: Uint8Array,
  count: number,
): Promise<Float32Array> {
  if (!isKQuantType(type)) throw new RangeError(`webgpu: ${type} is not q4_k, q5_k or q6_k`);
  const size = KQUANT_TYPE_SIZE[type];
  checkCount(type, data, count, 256, size);
  const nb = count / 256;
  const out = new Float32Array(count);
  if (nb === 0) return out;
  const kernel = await env.cache.get(
    `dequantize_${type}`,
    () => kquantDequantizeWgsl(type),
    ["dequantize"],
    1,
    1,
  );
  const outBytes = bytesOf(out);
  // the float output (1 KiB per super-block) is the largest binding
  const chunks: Chunk[] = splitRanges(nb, Math.floor(env.chunkBytes / 1024), 1).map((
    [b0, b1],
  ) => ({
    inputs: [data.subarray(b0 * size, b1 * size)],
    outputSizes: [(b1 - b0) * 1024],
    params: [(b1 - b0) * 64],
    groups: [Math.ceil(((b1 - b0) * 64) / 256)],
    receive: ([o]) => outBytes.set(o, b0 * 1024),
  }));
  await runJob(env, { label: `dequantize ${type}`, kernel, chunks });
  return out;
}
