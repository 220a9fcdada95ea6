/**
 * WebGPU backend of @quantx/kernels (WGSL through `navigator.gpu`): q4_0 / q8_0 / NF4 quantize and
 * dequantize with exactly the CPU kernels' bytes and values, q4_k / q5_k / q6_k dequantize, and a
 * fused dequantize + GEMV. Large tensors are processed in chunks under the device's binding limit,
 * with uploads and readbacks overlapping compute.
 *
 * @example
 * ```ts
 * import { WebGpuKernels } from "./mod.ts";
 * const gpu = await WebGpuKernels.create();
 * const q = await gpu.quantize("q4_0", new Float32Array(4096));
 * gpu.destroy();
 * ```
 * @module
 */
import { acquireGpu, type GpuContext, type GpuOptions, type WebGpuAdapterInfo } from "./device.ts";
import { type Block32Type, dequantizeBlock32, quantizeBlock32 } from "./block32.ts";
import { dequantizeKQuant, isKQuantType } from "./kquants_dequant.ts";
import { dequantizeNf4Gpu, type Nf4Quantized, quantizeNf4Gpu } from "./nf4.ts";
import { gemvGpu, type GemvType, type Nf4Weight } from "./gemv.ts";
import { KernelCache, type KernelEnv } from "./runner.ts";

export { type WebGpuAdapterInfo, WebGpuDeviceLostError, WebGpuUnavailableError } from "./device.ts";
export type { GemvType, Nf4Quantized, Nf4Weight };

/** Types {@link WebGpuKernels.dequantize} accepts. */
export type WebGpuDequantType = "q4_0" | "q8_0" | "q4_k" | "q5_k" | "q6_k";

/** Options for {@link WebGpuKernels.create}. */
export interface WebGpuKernelsOptions extends GpuOptions {
  /**
   * Largest byte size of any per-chunk GPU buffer (default: the smaller of the device's
   * `maxStorageBufferBindingSize`, `maxBufferSize` and 32 MiB; never above those limits).
   * Small values force the chunked path.
   */
  chunkBytes?: number;
  /**
   * Workgroups per dispatch dimension before a dispatch spills into 2D (default and maximum: the
   * device's `maxComputeWorkgroupsPerDimension`). Small values exercise the 2D path in tests.
   */
  maxWorkgroupsPerDimension?: number;
}

const DEFAULT_CHUNK_BYTES = 32 << 20;

/** The WebGPU kernels on one device. Create with {@link WebGpuKernels.create}. */
export class WebGpuKernels {
  #ctx: GpuContext;
  #env: KernelEnv;

  private constructor(ctx: GpuContext, chunkBytes: number, maxGroupsPerDim: number) {
    this.#ctx = ctx;
    this.#env = { ctx, cache: new KernelCache(ctx), chunkBytes, maxGroupsPerDim };
    if (ctx.info.features.includes("timestamp-query")) this.#env.timer = { kernelNs: 0 };
  }

  /**
   * Acquires an adapter and device. Throws `WebGpuUnavailableError` when the runtime has no
   * WebGPU or no adapter.
   */
  static async create(opts: WebGpuKernelsOptions = {}): Promise<WebGpuKernels> {
    const ctx = await acquireGpu(opts);
    const l = ctx.info.limits;
    const cap = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize, 1 << 30);
    let chunk = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    let groups = opts.maxWorkgroupsPerDimension ?? l.maxComputeWorkgroupsPerDimension;
    if (!(chunk > 0) || !(groups >= 1)) {
      ctx.destroy();
      throw new RangeError(
        `chunkBytes and maxWorkgroupsPerDimension must be positive, got ${chunk} and ${groups}`,
      );
    }
    chunk = Math.max(256, Math.min(Math.floor(chunk), cap));
    groups = Math.min(Math.floor(groups), l.maxComputeWorkgroupsPerDimension);
    return new WebGpuKernels(ctx, chunk, groups);
  }

  /** The adapter's name, whether it is a software fallback, enabled features and limits. */
  get adapterInfo(): WebGpuAdapterInfo {
    return this.#ctx.info;
  }

  /**
   * GPU time spent in compute passes since creation (or the last {@link resetKernelTime}), in
   * nanoseconds, from timestamp queries; `undefined` unless created with `timestamps: true` on
   * an adapter with `timestamp-query`. Upload and readback time is not included.
   */
  get kernelTimeNs(): number | undefined {
    return this.#env.timer?.kernelNs;
  }

  /** Restarts {@link kernelTimeNs} from zero. */
  resetKernelTime(): void {
    if (this.#env.timer) this.#env.timer.kernelNs = 0;
  }

  /** The chunk size in bytes in effect. */
  get chunkBytes(): number {
    return this.#env.chunkBytes;
  }

  /** Quantizes `src` (a multiple of 32 values) to q4_0 or q8_0 bytes, identical to libggml. */
  quantize(type: Block32Type, src: Float32Array): Promise<Uint8Array> {
    return quantizeBlock32(this.#env, type, src);
  }

  /** Dequantizes `count` values of `type` from `data`, bit-identical to libggml / gguf-py. */
  dequantize(type: WebGpuDequantType, data: Uint8Array, count: number): Promise<Float32Array> {
    if (isKQuantType(type)) return dequantizeKQuant(this.#env, type, data, count);
    return dequantizeBlock32(this.#env, type, data, count);
  }

  /** NF4-quantizes `src` (flattened) with `blockSize` values per absmax (bitsandbytes). */
  quantizeNf4(src: Float32Array, blockSize = 64): Promise<Nf4Quantized> {
    return quantizeNf4Gpu(this.#env, src, blockSize);
  }

  /** Dequantizes `count` NF4 values from packed `codes` and per-block `absmax`. */
  dequantizeNf4(
    codes: Uint8Array,
    absmax: Float32Array,
    count: number,
    blockSize = 64,
  ): Promise<Float32Array> {
    return dequantizeNf4Gpu(this.#env, codes, absmax, count, blockSize);
  }

  /**
   * `y = W x` for `W` of `rows` x `cols` (row-major): q4_0 / q8_0 bytes, or NF4
   * `{codes, absmax, blockSize?}` over the flattened matrix.
   */
  gemv(
    type: GemvType,
    weight: Uint8Array | Nf4Weight,
    rows: number,
    cols: number,
    x: Float32Array,
  ): Promise<Float32Array> {
    return gemvGpu(this.#env, type, weight, rows, cols, x);
  }

  /** Releases the device; later calls reject with `WebGpuDeviceLostError`. */
  destroy(): void {
    if (!this.#ctx.isLost) this.#ctx.destroy();
  }
}
