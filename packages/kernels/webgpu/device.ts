/**
 * WebGPU adapter and device acquisition for the QuantX kernels: asks `navigator.gpu` (or a given
 * `GPU` object) for an adapter, requests a device with the adapter's largest storage-buffer limits,
 * and turns "no WebGPU", "no adapter" and "device lost" into clear, typed errors.
 * @module
 */

/** WebGPU cannot be used here: no `navigator.gpu`, no adapter, or the device request failed. */
export class WebGpuUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(`WebGPU unavailable: ${message}`, options);
    this.name = "WebGpuUnavailableError";
  }
}

/** The GPU device was lost (driver reset, `destroy()`, out of memory...) before or during a call. */
export class WebGpuDeviceLostError extends Error {
  /** `"destroyed"` when QuantX or the caller destroyed the device, else `"unknown"`. */
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(`WebGPU device lost (${reason}): ${message}`, options);
    this.name = "WebGpuDeviceLostError";
    this.reason = reason;
  }
}

/** Options for {@link acquireGpu}. */
export interface GpuOptions {
  /** The `GPU` object to use instead of `navigator.gpu` (tests, other hosts). */
  gpu?: GPU;
  /** Passed to `requestAdapter`. */
  powerPreference?: GPUPowerPreference;
  /** Accept a software (fallback) adapter; default true (CI runs on llvmpipe). */
  allowFallbackAdapter?: boolean;
  /** Enable the `timestamp-query` feature when the adapter has it (for kernel timing). */
  timestamps?: boolean;
}

/** What the kernels report about the adapter they run on. */
export interface WebGpuAdapterInfo {
  /** A human-readable name: the adapter's description, else vendor / architecture / device. */
  name: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a software adapter such as llvmpipe / SwiftShader. */
  isFallbackAdapter: boolean;
  /** Optional features that were enabled on the device. */
  features: string[];
  /** The limits the device was created with that matter to the kernels. */
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupsPerDimension: number;
    minStorageBufferOffsetAlignment: number;
  };
}

/** A device together with what is known about it and whether it is still usable. */
export class GpuContext {
  /** The adapter the device came from. */
  readonly adapter: GPUAdapter;
  /** The device every kernel runs on. */
  readonly device: GPUDevice;
  /** Adapter name, features and limits. */
  readonly info: WebGpuAdapterInfo;
  #lost: GPUDeviceLostInfo | undefined;
  #destroyed = false;
  #lostPromise: Promise<GPUDeviceLostInfo>;

  constructor(adapter: GPUAdapter, device: GPUDevice, info: WebGpuAdapterInfo) {
    this.adapter = adapter;
    this.device = device;
    this.info = info;
    this.#lostPromise = device.lost.then((i) => (this.#lost = i));
  }

  /** True once the device was lost or destroyed. */
  get isLost(): boolean {
    return this.#destroyed || this.#lost !== undefined;
  }

  /** Throws {@link WebGpuDeviceLostError} when the device can no longer be used. */
  assertAlive(): void {
    if (this.#destroyed) {
      throw new WebGpuDeviceLostError("destroyed", "the kernels were destroyed");
    }
    if (this.#lost) {
      throw new WebGpuDeviceLostError(this.#lost.reason ?? "unknown", this.#lost.message);
    }
  }

  /**
   * Maps a failure during GPU work to {@link WebGpuDeviceLostError} when the device was lost
   * (waiting briefly for the `lost` promise, which settles after the failing call), else
   * returns the error unchanged.
   */
  async explain(err: unknown): Promise<unknown> {
    if (err instanceof WebGpuDeviceLostError) return err;
    if (!this.isLost) {
      await Promise.race([this.#lostPromise, new Promise((r) => setTimeout(r, 50))]);
    }
    if (this.#destroyed) {
      return new WebGpuDeviceLostError("destroyed", "the kernels were destroyed", { cause: err });
    }
    if (this.#lost) {
      return new WebGpuDeviceLostError(this.#lost.reason ?? "unknown", this.#lost.message, {
        cause: err,
      });
    }
    return err;
  }

  /** Destroys the device; later calls fail with {@link WebGpuDeviceLostError}. */
  destroy(): void {
    this.#destroyed = true;
    this.device.destroy();
  }
}

/**
 * Requests an adapter and a device with the adapter's maximum `maxStorageBufferBindingSize` and
 * `maxBufferSize`. `shader-f16` and `subgroups` are enabled when the adapter offers them (the
 * kernels never require them), `timestamp-query` when asked for and offered. Throws {@link WebGpuUnavailableError} when there is no WebGPU, no
 * adapter, or the device cannot be created.
 */
export async function acquireGpu(opts: GpuOptions = {}): Promise<GpuContext> {
  const gpu = opts.gpu ??
    (globalThis.navigator as (Navigator & { gpu?: GPU }) | undefined)?.gpu;
  if (!gpu) throw new WebGpuUnavailableError("this runtime has no navigator.gpu");
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
  } catch (cause) {
    throw new WebGpuUnavailableError(`requestAdapter failed: ${String(cause)}`, { cause });
  }
  if (!adapter) throw new WebGpuUnavailableError("no GPU adapter was found");
  const fallback = adapterIsFallback(adapter);
  if (fallback && opts.allowFallbackAdapter === false) {
    throw new WebGpuUnavailableError("only a software (fallback) adapter is available");
  }
  const features: GPUFeatureName[] = [];
  const wanted = ["shader-f16", "subgroups", ...(opts.timestamps ? ["timestamp-query"] : [])];
  for (const f of wanted as GPUFeatureName[]) {
    if (adapter.features.has(f)) features.push(f);
  }
  const al = adapter.limits;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
        maxBufferSize: al.maxBufferSize,
      },
    });
  } catch (cause) {
    throw new WebGpuUnavailableError(`requestDevice failed: ${String(cause)}`, { cause });
  }
  const ai = adapter.info;
  const dl = device.limits;
  const vendor = ai?.vendor ?? "", architecture = ai?.architecture ?? "";
  const dev = ai?.device ?? "", description = ai?.description ?? "";
  const name = description || [vendor, architecture, dev].filter((s) => s).join(" ") ||
    "unknown adapter";
  const info: WebGpuAdapterInfo = {
    name,
    vendor,
    architecture,
    device: dev,
    description,
    isFallbackAdapter: fallback,
    features: [...device.features].map(String).sort(),
    limits: {
      maxStorageBufferBindingSize: dl.maxStorageBufferBindingSize,
      maxBufferSize: dl.maxBufferSize,
      maxComputeWorkgroupsPerDimension: dl.maxComputeWorkgroupsPerDimension,
      minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
    },
  };
  return new GpuContext(adapter, device, info);
}

function adapterIsFallback(adapter: GPUAdapter): boolean {
  const a = adapter as GPUAdapter & {
    isFallbackAdapter?: boolean;
    info?: { isFallbackAdapter?: boolean };
  };
  return Boolean(a.info?.isFallbackAdapter ?? a.isFallbackAdapter ?? false);
}
