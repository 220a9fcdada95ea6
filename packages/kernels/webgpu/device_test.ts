import assert from "node:assert/strict";
import { WebGpuDeviceLostError, WebGpuKernels, WebGpuUnavailableError } from "./mod.ts";
import { gaussian } from "../../../tests/support/random.ts";

Deno.test("a missing adapter or WebGPU is a WebGpuUnavailableError", async () => {
  const noAdapter = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
  await assert.rejects(WebGpuKernels.create({ gpu: noAdapter }), (e: Error) => {
    assert.ok(e instanceof WebGpuUnavailableError);
    assert.match(e.message, /no GPU adapter/);
    return true;
  });
  const broken = { requestAdapter: () => Promise.reject(new Error("driver")) } as unknown as GPU;
  await assert.rejects(WebGpuKernels.create({ gpu: broken }), WebGpuUnavailableError);
});

Deno.test("adapterInfo names the adapter and its limits", async () => {
  const gpu = await WebGpuKernels.create();
  try {
    const info = gpu.adapterInfo;
    assert.ok(info.name.length > 0);
    assert.equal(typeof info.isFallbackAdapter, "boolean");
    assert.ok(info.limits.maxStorageBufferBindingSize >= 1 << 27);
    assert.ok(info.limits.maxComputeWorkgroupsPerDimension >= 65535);
    assert.ok(gpu.chunkBytes <= info.limits.maxStorageBufferBindingSize);
    if (info.isFallbackAdapter) {
      await assert.rejects(
        WebGpuKernels.create({ allowFallbackAdapter: false }),
        WebGpuUnavailableError,
      );
    }
  } finally {
    gpu.destroy();
  }
  await assert.rejects(WebGpuKernels.create({ chunkBytes: 0 }), RangeError);
});

Deno.test("calls after destroy() reject with WebGpuDeviceLostError", async () => {
  const gpu = await WebGpuKernels.create();
  const inFlight = gpu.quantize("q4_0", gaussian(1 << 16, 1));
  gpu.destroy();
  await assert.rejects(inFlight, WebGpuDeviceLostError);
  await assert.rejects(gpu.quantize("q8_0", new Float32Array(32)), WebGpuDeviceLostError);
  await assert.rejects(gpu.dequantize("q6_k", new Uint8Array(210), 256), WebGpuDeviceLostError);
  await assert.rejects(gpu.quantizeNf4(new Float32Array(64)), WebGpuDeviceLostError);
  await assert.rejects(
    gpu.gemv("q4_0", new Uint8Array(18), 1, 32, new Float32Array(32)),
    WebGpuDeviceLostError,
  );
  gpu.destroy(); // idempotent
});

Deno.test("a device lost between chunks fails the call with WebGpuDeviceLostError", async () => {
  const gpu = await WebGpuKernels.create({ chunkBytes: 8192 });
  const src = gaussian(1 << 20, 2); // 512 chunks, each with its own readback round trip
  await gpu.quantize("q4_0", src.subarray(0, 2048)); // compiled, so the next call reaches runJob
  const call = gpu.quantize("q4_0", src);
  await new Promise((r) => setTimeout(r, 5));
  gpu.destroy();
  await assert.rejects(call, WebGpuDeviceLostError);
});

Deno.test("a device lost behind the kernels' back is a WebGpuDeviceLostError", async () => {
  // capture the device the kernels get, then destroy it directly
  let device: GPUDevice | undefined;
  const real = navigator.gpu;
  const gpuProxy = {
    requestAdapter: async (o?: GPURequestAdapterOptions) => {
      const adapter = await real.requestAdapter(o);
      if (!adapter) return null;
      return new Proxy(adapter, {
        get(target, key) {
          if (key === "requestDevice") {
            return async (d?: GPUDeviceDescriptor) => (device = await target.requestDevice(d));
          }
          const v = Reflect.get(target, key, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    },
  } as unknown as GPU;
  const gpu = await WebGpuKernels.create({ gpu: gpuProxy });
  assert.ok(device);
  assert.equal((await gpu.quantize("q8_0", new Float32Array(64))).length, 68);
  device.destroy();
  await assert.rejects(gpu.quantize("q8_0", new Float32Array(64)), (e: Error) => {
    assert.ok(e instanceof WebGpuDeviceLostError, String(e));
    return true;
  });
  gpu.destroy();
});
