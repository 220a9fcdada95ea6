/**
 * The chunked, pipelined executor behind every WebGPU kernel. A job is a list of chunks; each
 * chunk uploads its inputs, runs one or more compute passes and reads its outputs back. Two sets
 * of buffers alternate, so the upload and readback of one chunk overlap the compute of the next.
 * Chunks keep every binding under the device's `maxStorageBufferBindingSize`; workgroup counts
 * above `maxComputeWorkgroupsPerDimension` spill into a 2D dispatch.
 * @module
 */
import type { GpuContext } from "./device.ts";
import { dispatchSize } from "./shaders/common.ts";

/** One chunk of a job. */
export interface Chunk {
  /** Bytes uploaded to the per-chunk read-only storage bindings, in binding order. */
  inputs: Uint8Array[];
  /** Byte length of each output binding for this chunk (read back). */
  outputSizes: number[];
  /** Up to 8 u32 written to the `Params` uniform (`zero`, index 1, is forced to 0). */
  params: number[];
  /** Linear workgroup count for each pipeline of the job (0 skips it). */
  groups: number[];
  /** Receives views of the outputs; must copy what it keeps before returning. */
  receive(outputs: Uint8Array[]): void;
}

/** A compiled kernel family: its bind group layout and pipelines (entry points). */
export interface Kernel {
  layout: GPUBindGroupLayout;
  pipelines: GPUComputePipeline[];
  /** Read-only storage bindings (per-chunk inputs then resident buffers). */
  readOnly: number;
  /** Read-write storage bindings (scratch then outputs). */
  readWrite: number;
}

/** A job: a kernel, buffers bound to every chunk, scratch sizes and the chunks. */
export interface Job {
  label: string;
  kernel: Kernel;
  /** Read-only buffers bound after the per-chunk inputs (e.g. the GEMV vector). */
  resident?: GPUBuffer[];
  /** Byte sizes of read-write scratch buffers bound before the outputs. */
  scratch?: number[];
  chunks: Chunk[];
}

/** Rounds up to a multiple of 4 (WebGPU copy granularity), at least 4. */
export function pad4(n: number): number {
  return Math.max(4, Math.ceil(n / 4) * 4);
}

/** Compiles kernels once per device and caches them by key. */
export class KernelCache {
  #ctx: GpuContext;
  #cache = new Map<string, Promise<Kernel>>();

  constructor(ctx: GpuContext) {
    this.#ctx = ctx;
  }

  /**
   * The kernel `key`, compiling `code` with the given entry points on first use. Bindings:
   * 0 = uniform `Params`, 1..readOnly = read-only storage, then readWrite read-write storage.
   */
  get(
    key: string,
    code: () => string,
    entryPoints: string[],
    readOnly: number,
    readWrite: number,
  ): Promise<Kernel> {
    this.#ctx.assertAlive();
    let k = this.#cache.get(key);
    if (!k) {
      k = this.#compile(key, code(), entryPoints, readOnly, readWrite).catch(async (err) => {
        throw await this.#ctx.explain(err);
      });
      k.catch(() => this.#cache.delete(key));
      this.#cache.set(key, k);
    }
    return k;
  }

  async #compile(
    key: string,
    code: string,
    entryPoints: string[],
    readOnly: number,
    readWrite: number,
  ): Promise<Kernel> {
    const device = this.#ctx.device;
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
    ];
    for (let i = 0; i < readOnly + readWrite; i++) {
      entries.push({
        binding: 1 + i,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: i < readOnly ? "read-only-storage" : "storage" },
      });
    }
    const layout = device.createBindGroupLayout({ label: key, entries });
    const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
    const module = device.createShaderModule({ label: key, code });
    const pipelines = await Promise.all(
      entryPoints.map((entryPoint) =>
        device.createComputePipelineAsync({
          label: `${key}:${entryPoint}`,
          layout: pipelineLayout,
          compute: { module, entryPoint },
        })
      ),
    );
    return { layout, pipelines, readOnly, readWrite };
  }
}

interface Slot {
  timer?: { querySet: GPUQuerySet; resolve: GPUBuffer; readback: GPUBuffer };
  uniform: GPUBuffer;
  inputs: GPUBuffer[];
  outputs: GPUBuffer[];
  readbacks: GPUBuffer[];
  bindGroup: GPUBindGroup;
  pending?: Promise<void>;
}

/**
 * Runs every chunk of `job` on the device, at most `depth` chunks in flight. Resolves once every
 * chunk's outputs were received; rejects with a clear error on validation or out-of-memory
 * errors, and with `WebGpuDeviceLostError` when the device is lost.
 */
export async function runJob(env: KernelEnv, job: Job, depth = 2): Promise<void> {
  const { ctx } = env;
  ctx.assertAlive();
  const chunks = job.chunks;
  if (chunks.length === 0) return;
  const device = ctx.device;
  const { kernel } = job;
  const nIn = chunks[0].inputs.length, nOut = chunks[0].outputSizes.length;
  const resident = job.resident ?? [], scratchSizes = job.scratch ?? [];
  if (nIn + resident.length !== kernel.readOnly) {
    throw new Error(
      `${job.label}: ${nIn + resident.length} read-only bindings, kernel wants ${kernel.readOnly}`,
    );
  }
  if (scratchSizes.length + nOut !== kernel.readWrite) {
    throw new Error(
      `${job.label}: ${
        scratchSizes.length + nOut
      } read-write bindings, kernel wants ${kernel.readWrite}`,
    );
  }
  const maxIn = new Array<number>(nIn).fill(4), maxOut = new Array<number>(nOut).fill(4);
  for (const c of chunks) {
    c.inputs.forEach((u, i) => (maxIn[i] = Math.max(maxIn[i], pad4(u.byteLength))));
    c.outputSizes.forEach((s, i) => (maxOut[i] = Math.max(maxOut[i], pad4(s))));
  }
  const created: GPUBuffer[] = [];
  const make = (size: number, usage: number, label: string) => {
    const b = device.createBuffer({ size, usage, label: `${job.label}:${label}` });
    created.push(b);
    return b;
  };
  const slots: Slot[] = [];
  const querySets: GPUQuerySet[] = [];
  const setupScopes: Promise<GPUError | null>[] = [];
  try {
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    const scratch = scratchSizes.map((s, i) =>
      make(pad4(s), GPUBufferUsage.STORAGE, `scratch${i}`)
    );
    for (let s = 0; s < Math.min(depth, chunks.length); s++) {
      const uniform = make(32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, "params");
      const inputs = maxIn.map((n, i) =>
        make(n, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, `in${i}`)
      );
      const outputs = maxOut.map((n, i) =>
        make(n, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, `out${i}`)
      );
      const readbacks = maxOut.map((n, i) =>
        make(n, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `readback${i}`)
      );
      const buffers = [uniform, ...inputs, ...resident, ...scratch, ...outputs];
      const bindGroup = device.createBindGroup({
        layout: kernel.layout,
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      let timer: Slot["timer"];
      if (env.timer) {
        const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
        querySets.push(querySet);
        const resolve = make(16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, "ts");
        const readback = make(16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "ts-read");
        timer = { querySet, resolve, readback };
      }
      slots.push({ timer, uniform, inputs, outputs, readbacks, bindGroup });
    }
    // checked after the chunks (or on failure) rather than awaited here: each await of the
    // device costs a poll interval
    setupScopes.push(device.popErrorScope(), device.popErrorScope());
    for (const p of setupScopes) p.catch(() => {});
    const params = new Uint32Array(8);
    for (let i = 0; i < chunks.length; i++) {
      const slot = slots[i % slots.length];
      if (slot.pending) {
        const p = slot.pending;
        slot.pending = undefined;
        await p;
      }
      ctx.assertAlive();
      const c = chunks[i];
      device.pushErrorScope("validation");
      c.inputs.forEach((u, k) => writePadded(device, slot.inputs[k], u));
      params.fill(0);
      c.params.forEach((v, k) => (params[k] = v));
      params[1] = 0;
      device.queue.writeBuffer(slot.uniform, 0, params);
      const enc = device.createCommandEncoder({ label: job.label });
      const pass = enc.beginComputePass({
        label: job.label,
        timestampWrites: slot.timer
          ? { querySet: slot.timer.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 }
          : undefined,
      });
      kernel.pipelines.forEach((p, k) => {
        const groups = c.groups[k] ?? 0;
        if (groups <= 0) return;
        const [x, y] = dispatchSize(groups, env.maxGroupsPerDim);
        pass.setPipeline(p);
        pass.setBindGroup(0, slot.bindGroup);
        pass.dispatchWorkgroups(x, y);
      });
      pass.end();
      if (slot.timer) {
        enc.resolveQuerySet(slot.timer.querySet, 0, 2, slot.timer.resolve, 0);
        enc.copyBufferToBuffer(slot.timer.resolve, 0, slot.timer.readback, 0, 16);
      }
      c.outputSizes.forEach((n, k) => {
        if (n > 0) enc.copyBufferToBuffer(slot.outputs[k], 0, slot.readbacks[k], 0, pad4(n));
      });
      device.queue.submit([enc.finish()]);
      const scope = device.popErrorScope();
      slot.pending = readBack(env, job.label, slot, c, scope);
      slot.pending.catch(() => {});
    }
    for (const slot of slots) {
      const p = slot.pending;
      slot.pending = undefined;
      if (p) await p;
    }
    await checkScopes(job.label, ...setupScopes);
  } catch (err) {
    await Promise.allSettled(slots.map((s) => s.pending));
    // a failed allocation explains later failures better than they do
    const setup = await checkScopes(job.label, ...setupScopes).then(() => err, (e) => e);
    throw await ctx.explain(setup);
  } finally {
    for (const b of created) b.destroy();
    for (const q of querySets) q.destroy();
  }
}

async function readBack(
  env: KernelEnv,
  label: string,
  slot: Slot,
  c: Chunk,
  scope: Promise<GPUError | null>,
): Promise<void> {
  const sizes = c.outputSizes;
  // map right away, in parallel with the error-scope check (each costs a device poll)
  const maps = sizes.map((n, k) =>
    n > 0 ? slot.readbacks[k].mapAsync(GPUMapMode.READ, 0, pad4(n)) : Promise.resolve()
  );
  const timer = slot.timer && env.timer ? slot.timer.readback : undefined;
  if (timer) maps.push(timer.mapAsync(GPUMapMode.READ));
  const [, settled] = await Promise.all([
    checkScopes(label, scope).catch(async (e) => {
      await Promise.allSettled(maps);
      throw e;
    }),
    Promise.allSettled(maps),
  ]);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  try {
    const views = sizes.map((n, k) =>
      n > 0 ? new Uint8Array(slot.readbacks[k].getMappedRange(0, pad4(n)), 0, n) : new Uint8Array()
    );
    c.receive(views);
    if (timer && env.timer) {
      const [t0, t1] = new BigUint64Array(timer.getMappedRange(0, 16));
      if (t1 > t0) env.timer.kernelNs += Number(t1 - t0);
    }
  } finally {
    sizes.forEach((n, k) => n > 0 && slot.readbacks[k].unmap());
    timer?.unmap();
  }
}

async function checkScopes(label: string, ...scopes: Promise<GPUError | null>[]): Promise<void> {
  for (const s of scopes) {
    const err = await s;
    if (err) throw new Error(`WebGPU ${label}: ${err.constructor.name}: ${err.message}`);
  }
}

function writePadded(device: GPUDevice, buffer: GPUBuffer, data: Uint8Array): void {
  if (data.byteLength === 0) return;
  if (data.byteLength % 4 === 0) {
    device.queue.writeBuffer(buffer, 0, data);
    return;
  }
  const padded = new Uint8Array(pad4(data.byteLength));
  padded.set(data);
  device.queue.writeBuffer(buffer, 0, padded);
}

/** Splits `[0, total)` into ranges of at most `per` (a multiple of `unit`, at least `unit`). */
export function splitRanges(total: number, per: number, unit = 1): [number, number][] {
  const step = Math.max(unit, Math.floor(per / unit) * unit);
  const out: [number, number][] = [];
  for (let s = 0; s < total; s += step) out.push([s, Math.min(total, s + step)]);
  return out;
}

/** What every kernel family needs: the device, the compiled-kernel cache and the chunk size. */
export interface KernelEnv {
  ctx: GpuContext;
  cache: KernelCache;
  /** Largest byte size of any per-chunk buffer (clamped to the binding limit). */
  chunkBytes: number;
  /** Workgroups per dispatch dimension before spilling into `y` (at most the device limit). */
  maxGroupsPerDim: number;
  /** When set, GPU time of every compute pass (timestamp queries) is added to `kernelNs`. */
  timer?: { kernelNs: number };
}

/** The bytes of a typed array, without copying. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
