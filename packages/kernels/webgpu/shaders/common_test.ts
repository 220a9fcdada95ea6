import assert from "node:assert/strict";
import { ggmlDequantize, ggmlQuantize } from "../../../../tests/support/libggml.ts";
import { acquireGpu, type GpuContext } from "../device.ts";
import { rng } from "../../../../tests/support/random.ts";
import { dispatchSize, DIV_WGSL, HALF_WGSL } from "./common.ts";

const HARNESS = /* wgsl */ `
${HALF_WGSL}
${DIV_WGSL}
@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(64) fn div(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&o)) {
    o[g.x] = bitcast<u32>(div_exact(bitcast<f32>(a[g.x]), bitcast<f32>(b[g.x])));
  }
}
@compute @workgroup_size(64) fn to_f16(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&o)) { o[g.x] = f32_to_f16_bits(bitcast<f32>(a[g.x])) + (b[0] & 0u); }
}
@compute @workgroup_size(64) fn from_f16(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&o)) { o[g.x] = bitcast<u32>(f16_bits_to_f32(a[g.x])) + (b[0] & 0u); }
}
`;

async function run(ctx: GpuContext, entry: string, a: Uint32Array, b: Uint32Array) {
  const { device } = ctx;
  const module = device.createShaderModule({ code: HARNESS });
  const pipeline = await device.createComputePipelineAsync({
    layout: "auto",
    compute: { module, entryPoint: entry },
  });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const mk = (u: Uint32Array) => {
    const buf = device.createBuffer({ size: u.byteLength, usage });
    device.queue.writeBuffer(buf, 0, u);
    return buf;
  };
  const ba = mk(a), bb = mk(b);
  const bo = device.createBuffer({
    size: a.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const rb = device.createBuffer({
    size: a.byteLength,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [ba, bb, bo].map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  pass.dispatchWorkgroups(Math.ceil(a.length / 64));
  pass.end();
  enc.copyBufferToBuffer(bo, 0, rb, 0, a.byteLength);
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const out = new Uint32Array(rb.getMappedRange().slice(0));
  for (const x of [ba, bb, bo, rb]) x.destroy();
  return out;
}

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => (f32[0] = x, u32[0]);
const valueOf = (u: number) => (u32[0] = u, f32[0]);

Deno.test("wgsl div_exact is correctly rounded (normal, subnormal, overflow)", async () => {
  const ctx = await acquireGpu();
  try {
    const r = rng(5);
    const n = 1 << 16;
    const a = new Uint32Array(n), b = new Uint32Array(n);
    const finite = (lo: number, hi: number) => {
      // random sign, exponent field in [lo, hi], random mantissa
      const e = lo + Math.floor(r() * (hi - lo + 1));
      return ((r() < 0.5 ? 0x80000000 : 0) | (e << 23) | Math.floor(r() * 0x800000)) >>> 0;
    };
    for (let i = 0; i < n; i++) {
      switch (i % 6) {
        case 0: // what the quantizers divide: 1/d, amax/127, max/-8
          a[i] = bitsOf(1);
          b[i] = finite(60, 190);
          break;
        case 1:
          a[i] = finite(60, 190);
          b[i] = bitsOf([127, -8, 3, 7, 0.1][i % 5]);
          break;
        case 2: // anything finite, including subnormals
          a[i] = finite(0, 254);
          b[i] = finite(0, 254) | 1;
          break;
        case 3: // results near the subnormal range
          a[i] = finite(1, 30);
          b[i] = finite(120, 160);
          break;
        case 4: // results near overflow
          a[i] = finite(200, 254);
          b[i] = finite(90, 130);
          break;
        default: // equal mantissas and ties
          a[i] = finite(100, 150);
          b[i] = (finite(100, 150) & 0xff800000) | (a[i] & 0x7fffff);
      }
    }
    a[0] = bitsOf(0);
    a[1] = bitsOf(-0);
    const got = await run(ctx, "div", a, b);
    for (let i = 0; i < n; i++) {
      const want = bitsOf(Math.fround(valueOf(a[i]) / valueOf(b[i])));
      if (got[i] !== want) {
        assert.fail(
          `div_exact(${valueOf(a[i])}, ${valueOf(b[i])}) = ${valueOf(got[i])}, want ${
            valueOf(want)
          }`,
        );
      }
    }
  } finally {
    ctx.destroy();
  }
});

Deno.test("wgsl f32 <-> f16 match ggml (round to nearest even, subnormals)", async () => {
  const ctx = await acquireGpu();
  try {
    // every f16 pattern widens exactly as ggml's table does
    const all = new Uint32Array(65536).map((_, i) => i);
    const wide = await run(ctx, "from_f16", all, new Uint32Array(1));
    const h = new Uint8Array(all.length * 2);
    all.forEach((v, i) => (h[2 * i] = v & 255, h[2 * i + 1] = v >> 8));
    const ref = new Uint32Array(ggmlDequantize("f16", h, all.length).buffer);
    for (let i = 0; i < all.length; i++) {
      // NaN payloads are not specified (F16C quiets them); only check that NaN stays NaN
      const nan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (nan ? !Number.isNaN(valueOf(wide[i])) : wide[i] !== ref[i]) {
        assert.fail(
          `f16 ${i.toString(16)} -> ${wide[i].toString(16)}, ggml ${ref[i].toString(16)}`,
        );
      }
    }
    // narrowing: random floats over the whole f16 range and beyond, plus every tie point
    const r = rng(9);
    const src = new Float32Array(1 << 16);
    for (let i = 0; i < src.length; i++) {
      if (i % 4 === 0) {
        // halfway between two f16 values (ties) and one f32 ulp either side
        const k = Math.floor(r() * 0x7bff);
        const lo = new Float32Array(ggmlDequantize("f16", new Uint8Array([k & 255, k >> 8]), 1))[0];
        const hi = new Float32Array(
          ggmlDequantize("f16", new Uint8Array([(k + 1) & 255, (k + 1) >> 8]), 1),
        )[0];
        const mid = bitsOf(Math.fround((lo + hi) / 2));
        src[i] = valueOf(mid + (i % 3) - 1) * (r() < 0.5 ? -1 : 1);
      } else {
        const e = 90 + Math.floor(r() * 60); // 2^-37 .. 2^22
        src[i] = valueOf(
          ((r() < 0.5 ? 0x80000000 : 0) | (e << 23) | Math.floor(r() * 0x800000)) >>> 0,
        );
      }
    }
    src.set([0, -0, 65504, 65519.996, 65520, 1e30, -Infinity, 2 ** -25, 2 ** -24, 1.5 * 2 ** -25]);
    const narrow = await run(ctx, "to_f16", new Uint32Array(src.buffer), new Uint32Array(1));
    const refBytes = ggmlQuantize("f16", src, 1);
    const refBits = new Uint16Array(refBytes.buffer);
    for (let i = 0; i < src.length; i++) {
      if (narrow[i] !== refBits[i]) {
        assert.fail(`f16(${src[i]}) = ${narrow[i].toString(16)}, ggml ${refBits[i].toString(16)}`);
      }
    }
  } finally {
    ctx.destroy();
  }
});

Deno.test("dispatchSize spills into y and covers every workgroup", () => {
  assert.deepEqual(dispatchSize(10, 65535), [10, 1]);
  assert.deepEqual(dispatchSize(0, 65535), [0, 1]);
  for (const [g, m] of [[65536, 65535], [9, 3], [8, 3], [200000, 65535], [7, 7]]) {
    const [x, y] = dispatchSize(g, m);
    assert.ok(x <= m && y <= m && x * y >= g && x * (y - 1) < g, `${g} ${m}: ${x} ${y}`);
  }
  assert.throws(() => dispatchSize(10, 3), RangeError);
});
