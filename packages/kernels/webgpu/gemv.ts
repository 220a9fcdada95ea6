/**
 * WebGPU fused dequantize + matrix-vector product `y = W x` for q4_0, q8_0 and nf4 weights (rows x
 * cols, row-major). Weight rows are streamed in chunks under the binding limit; `x` stays resident.
 * @module
 */
import { FormatError } from "@quantx/core";
import { BLOCK32_FORMATS, checkCount } from "./block32.ts";
import { checkNf4BlockSize, checkNf4Lengths } from "./nf4.ts";
import { bytesOf, type Chunk, type KernelEnv, pad4, runJob, splitRanges } from "./runner.ts";
import { gemvBlock32Wgsl, gemvNf4Wgsl } from "./shaders/gemv.ts";

/** Weight types the GEMV kernels read. */
export type GemvType = "q4_0" | "q8_0" | "nf4";

/** NF4 weights: packed codes (flattened row-major), absmax per block, block size (default 64). */
export interface Nf4Weight {
  codes: Uint8Array;
  absmax: Float32Array;
  blockSize?: number;
}

/** `y = W x` with `W` (`rows` x `cols`) given as q4_0 / q8_0 bytes or NF4 codes + absmax. */
export async function gemvGpu(
  env: KernelEnv,
  type: GemvType,
  weight: Uint8Array | Nf4Weight,
  rows: number,
  cols: number,
  x: Float32Array,
): Promise<Float32Array> {
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) {
    throw new RangeError(`gemv: bad shape ${rows} x ${cols}`);
  }
  if (x.length !== cols) {
    throw new RangeError(`gemv: x has ${x.length} values, W has ${cols} columns`);
  }
  const y = new Float32Array(rows);
  if (type === "nf4") {
    if (weight instanceof Uint8Array) {
      throw new TypeError("gemv nf4: weight must be {codes, absmax}");
    }
    const bs = weight.blockSize ?? 64;
    checkNf4BlockSize(bs);
    checkNf4Lengths(weight.codes, weight.absmax, rows * cols, bs);
  } else {
    const f = BLOCK32_FORMATS[type];
    if (!f) throw new RangeError(`gemv: unsupported weight type ${type}`);
    if (!(weight instanceof Uint8Array)) throw new TypeError(`gemv ${type}: weight must be bytes`);
    if (cols % 32 !== 0) {
      throw new FormatError(`gemv ${type}: ${cols} columns is not a multiple of 32`);
    }
    checkCount(type, weight, rows * cols, 32, f.bytes);
  }
  if (rows === 0) return y;
  if (cols === 0) return y;
  const { ctx } = env;
  const limit = ctx.info.limits.maxStorageBufferBindingSize;
  if (cols * 4 > limit) {
    throw new RangeError(`gemv: x (${cols * 4} bytes) exceeds the binding limit`);
  }
  const yBytes = bytesOf(y);
  ctx.assertAlive();
  const xBuf = ctx.device.createBuffer({
    label: "gemv x",
    size: pad4(cols * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  try {
    ctx.device.queue.writeBuffer(xBuf, 0, x);
    if (type === "nf4") {
      const w = weight as Nf4Weight;
      const bs = w.blockSize ?? 64;
      const kernel = await env.cache.get("gemv_nf4", gemvNf4Wgsl, ["gemv"], 3, 1);
      const rowBytes = Math.ceil(cols / 2) + 4;
      if (rowBytes > limit) {
        throw new RangeError(`gemv: a row (${rowBytes} bytes) exceeds the binding limit`);
      }
      const aligned = cols % 8 === 0 && bs % 8 === 0 ? 1 : 0;
      const chunks: Chunk[] = splitRanges(rows, Math.floor(env.chunkBytes / rowBytes), 1).map((
        [r0, r1],
      ) => {
        const f0 = r0 * cols, f1 = r1 * cols;
        return {
          inputs: [
            w.codes.subarray(Math.floor(f0 / 2), Math.ceil(f1 / 2)),
            bytesOf(w.absmax.subarray(Math.floor(f0 / bs), Math.ceil(f1 / bs))),
          ],
          outputSizes: [(r1 - r0) * 4],
          params: [r1 - r0, 0, cols, bs, f0 % 2, f0 % bs, aligned],
          groups: [r1 - r0],
          receive: ([o]) => yBytes.set(o, r0 * 4),
        };
      });
      await runJob(env, { label: "gemv nf4", kernel, resident: [xBuf], chunks });
    } else {
      const bytes = BLOCK32_FORMATS[type].bytes, nbr = cols / 32, rowBytes = nbr * bytes;
      if (rowBytes > limit) {
        throw new RangeError(`gemv: a row (${rowBytes} bytes) exceeds the binding limit`);
      }
      const kernel = await env.cache.get(
        `gemv_${type}`,
        () => gemvBlock32Wgsl(type),
        ["gemv"],
        2,
        1,
      );
      const w = weight as Uint8Array;
      const chunks: Chunk[] = splitRanges(rows, Math.floor(env.chunkBytes / rowBytes), 1).map((
        [r0, r1],
      ) => ({
        inputs: [w.subarray(r0 * rowBytes, r1 * rowBytes)],
        outputSizes: [(r1 - r0) * 4],
        params: [r1 - r0, 0, nbr],
        groups: [r1 - r0],
        receive: ([o]) => yBytes.set(o, r0 * 4),
      }));
      await runJob(env, { label: `gemv ${type}`, kernel, resident: [xBuf], chunks });
    }
  } finally {
    xBuf.destroy();
  }
  return y;
}
