/**
 * QNAT write -> read round trips, tensor by tensor, for every flag combination: NF4 codes and
 * absmax equal the kernel's, double-quantized scales follow the documented scheme, zero points
 * decode close to the input, unquantized tensors come back bit for bit, and the streaming writer
 * (any chunking) writes the same bytes as `writeQnat`.
 */
import assert from "node:assert/strict";
import { bytesSource, memorySink } from "@quantx/core";
import { dequantizeNf4, NF4_CODEBOOK, quantizeNf4 } from "@quantx/kernels";
import { gaussian, rng } from "../../tests/support/random.ts";
import {
  dequantizeQnatScales,
  openQnat,
  QNAT_FLAG_DOUBLE_QUANT,
  QNAT_FLAG_ZERO_POINTS,
  QNAT_HEADER_SIZE,
  type QnatTensorInput,
  QnatWriter,
  quantizeQnatScales,
  swapNibbles,
  writeQnat,
} from "./mod.ts";

function specialValues(): Float32Array {
  const v = gaussian(40, 9, 3);
  v.set([0, -0, NaN, Infinity, -Infinity, 3.4e38, 1e-45, -1e-45], 0);
  return v;
}

function inputs(): QnatTensorInput[] {
  const constBlock = gaussian(256, 5, 0.02);
  constBlock.fill(0.75, 64, 128); // a constant block
  constBlock.fill(0, 128, 192); // an all-zero block
  constBlock.fill(-2.5, 192, 256);
  return [
    { name: "model.layers.0.self_attn.q_proj.weight", shape: [48, 64], data: gaussian(3072, 1) },
    // 1000 elements: last block partial (1000 = 15 * 64 + 40)
    { name: "mlp.down_proj.weight", shape: [8, 125], data: gaussian(1000, 2, 0.05) },
    // odd element count: the last byte holds one code
    { name: "odd", shape: [3, 7, 3], data: gaussian(63, 3, 10) },
    { name: "blocks128", shape: [4, 160], data: gaussian(640, 4), blockSize: 128 },
    { name: "constants", shape: [256], data: constBlock },
    { name: "empty", shape: [0, 64], data: new Float32Array(0) },
    { name: "norm.weight", shape: [40], data: specialValues(), quantize: false },
    { name: "scalar", shape: [], data: new Float32Array([1.5]), quantize: false },
    { name: "scalar_q", shape: [], data: new Float32Array([-1.25]) },
    // more than 256 blocks, so double quantization has two factor groups
    { name: "wide", shape: [2, 8256], data: gaussian(16512, 6, 0.1), blockSize: 64 },
  ];
}

async function writeBytes(flags: number, tensors = inputs()): Promise<Uint8Array> {
  const sink = memorySink("rt.qnat");
  await writeQnat(
    sink,
    { modelName: "tiny-ü", modelType: "llama", computeDtype: "bf16", flags },
    tensors,
  );
  return sink.bytes();
}

function f32Bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

for (const flags of [0, 1, 2, 3]) {
  Deno.test(`qnat round trip, flags ${flags}`, async () => {
    const bytes = await writeBytes(flags);
    const file = await openQnat(bytesSource(bytes, "rt.qnat"));
    assert.equal(file.header.flags, flags);
    assert.equal(file.header.legacy, false);
    assert.deepEqual(file.metadata, {
      modelName: "tiny-ü",
      modelType: "llama",
      computeDtype: "bf16",
    });
    const dv = new DataView(bytes.buffer);
    assert.equal(Number(dv.getBigUint64(12, true)), 4 + 7 + 4 + 5 + 1, "real metadata length");
    const zp = (flags & QNAT_FLAG_ZERO_POINTS) !== 0;
    const dq = (flags & QNAT_FLAG_DOUBLE_QUANT) !== 0;
    for (const input of inputs()) {
      const t = file.tensor(input.name)!;
      const src = input.data as Float32Array;
      assert.deepEqual(t.shape, input.shape);
      assert.equal(t.elements, src.length);
      const raw = await file.readRaw(input.name);
      const out = await file.readF32(input.name);
      if (input.quantize === false) {
        assert.equal(t.dtype, "f32");
        assert.equal(t.blockSize, 0);
        assert.equal(t.blockCount, 0);
        assert.deepEqual(f32Bits(out), f32Bits(src), `${input.name} bit-exact`);
        continue;
      }
      const bs = input.blockSize ?? 64;
      assert.equal(t.dtype, "nf4");
      assert.equal(t.blockSize, bs);
      assert.equal(t.blockCount, Math.ceil(src.length / bs));
      assert.equal(raw.codes!.length, Math.ceil(src.length / 2));
      if (!zp) {
        const k = quantizeNf4(src, bs);
        assert.deepEqual(swapNibbles(raw.codes!), k.codes, `${input.name} codes`);
        let scales: Float32Array;
        if (dq) {
          const q = quantizeQnatScales(k.absmax);
          assert.equal(raw.scales, undefined);
          assert.deepEqual(raw.quantizedScales, q.quantized);
          assert.deepEqual(raw.scaleFactors, q.factors);
          assert.equal(raw.scaleFactors!.length, Math.ceil(t.blockCount / 256));
          scales = dequantizeQnatScales(q.quantized, q.factors);
        } else {
          assert.deepEqual(raw.scales, k.absmax, `${input.name} absmax`);
          scales = k.absmax;
        }
        const expected = dequantizeNf4(k.codes, scales, src.length, bs);
        assert.deepEqual(f32Bits(out), f32Bits(expected), `${input.name} decode`);
      } else {
        assert.equal(raw.zeroPoints!.length, t.blockCount);
        // asymmetric NF4: error within half the widest codebook gap of the block's half-range
        const scales = dq
          ? dequantizeQnatScales(raw.quantizedScales!, raw.scaleFactors!)
          : raw.scales!;
        for (let i = 0; i < src.length; i++) {
          const b = Math.floor(i / bs);
          const start = b * bs, end = Math.min(src.length, start + bs);
          let min = Infinity, max = -Infinity;
          for (let j = start; j < end; j++) {
            min = Math.min(min, src[j]);
            max = Math.max(max, src[j]);
          }
          const factor = dq ? raw.scaleFactors![Math.floor(b / 256)] : 0;
          const tol = ((max - min) / 2) * 0.17 + 1e-6 * (Math.abs(max) + Math.abs(min)) + factor;
          assert.ok(
            Math.abs(out[i] - src[i]) <= tol + 1e-7,
            `${input.name}[${i}]: ${out[i]} vs ${src[i]} (tol ${tol})`,
          );
          const code = i & 1 ? raw.codes![i >> 1] >> 4 : raw.codes![i >> 1] & 15;
          const want = Math.fround(
            Math.fround(NF4_CODEBOOK[code] + raw.zeroPoints![b]) * scales[b],
          );
          assert.equal(out[i], want, `${input.name}[${i}] formula`);
        }
        if (input.name === "constants" && !dq) {
          assert.ok(out.subarray(64, 128).every((v) => v === 0.75));
          assert.ok(out.subarray(128, 192).every((v) => v === 0));
          assert.ok(out.subarray(192, 256).every((v) => v === -2.5));
        }
      }
      // element ranges equal slices of the whole tensor
      const r = rng(src.length + flags);
      for (let k = 0; k < 20 && src.length > 0; k++) {
        const a = Math.floor(r() * src.length);
        const n = Math.floor(r() * (src.length - a + 1));
        const part = await file.readF32(input.name, a, n);
        assert.deepEqual(
          f32Bits(part),
          f32Bits(out.subarray(a, a + n)),
          `${input.name} [${a}, +${n})`,
        );
      }
    }
    await file.close();
  });
}

Deno.test("qnat streaming writer in chunks writes the same bytes as writeQnat", async () => {
  for (const flags of [0, 3]) {
    const tensors = inputs();
    const whole = await writeBytes(flags, tensors);
    const sink = memorySink();
    const w = new QnatWriter(
      sink,
      { modelName: "tiny-ü", modelType: "llama", computeDtype: "bf16", flags },
      tensors.map((t) => ({
        name: t.name,
        shape: t.shape,
        blockSize: t.quantize === false ? 0 : t.blockSize ?? 64,
      })),
    );
    await w.writeHeader();
    for (const t of tensors) {
      const data = t.data as Float32Array;
      const bs = t.quantize === false ? 7 : (t.blockSize ?? 64) * 3;
      assert.equal(w.currentTensor?.name, data.length ? t.name : w.currentTensor?.name);
      for (let i = 0; i < data.length; i += bs) await w.writeTensorData(data.subarray(i, i + bs));
    }
    assert.equal(w.currentTensor, undefined);
    await w.finish();
    assert.deepEqual(sink.bytes(), whole);
    assert.equal(whole.length, w.byteLength);
  }
});

Deno.test("qnat tiny file has the documented byte layout", async () => {
  const sink = memorySink();
  await writeQnat(sink, { modelName: "m", modelType: "t", computeDtype: "f16", flags: 0 }, [
    { name: "w", shape: [4], data: new Float32Array([1, -1, 0.5, 0]), blockSize: 4 },
    { name: "b", shape: [1], data: new Float32Array([2]), quantize: false },
  ]);
  const b = sink.bytes();
  const dv = new DataView(b.buffer);
  assert.equal(new TextDecoder().decode(b.subarray(0, 4)), "QNAT");
  assert.equal(dv.getUint32(4, true), 1);
  assert.equal(dv.getUint32(8, true), 0);
  assert.equal(Number(dv.getBigUint64(12, true)), 11); // 4+1 + 4+1 + 1
  assert.equal(dv.getUint32(20, true), 2);
  assert.equal(dv.getUint32(24, true), 0);
  assert.equal(b[QNAT_HEADER_SIZE + 10], 1); // compute dtype f16
  let at = QNAT_HEADER_SIZE + 11;
  // tensor "w": name, rank 1, dim 4, block size 4, offset, block count 1
  assert.equal(dv.getUint32(at, true), 1);
  assert.equal(b[at + 4], "w".charCodeAt(0));
  assert.equal(dv.getUint32(at + 5, true), 1);
  assert.equal(Number(dv.getBigUint64(at + 9, true)), 4);
  assert.equal(dv.getUint32(at + 17, true), 4);
  const offW = Number(dv.getBigUint64(at + 21, true));
  assert.equal(dv.getUint32(at + 29, true), 1);
  at += 33;
  assert.equal(dv.getUint32(at + 17, true), 0, "b: block size 0");
  const offB = Number(dv.getBigUint64(at + 21, true));
  assert.equal(dv.getUint32(at + 29, true), 0, "b: block count 0");
  at += 33;
  assert.equal(offW, at, "first tensor's data follows the headers");
  // codes for [1, -1, 0.5, 0] / absmax 1: 15, 0, 12 (0.5 is below the 12|13 midpoint), 7
  assert.deepEqual([...b.subarray(offW, offW + 2)], [15 | (0 << 4), 12 | (7 << 4)]);
  assert.equal(dv.getFloat32(offW + 2, true), 1, "absmax");
  assert.equal(offB, offW + 6);
  assert.equal(dv.getFloat32(offB, true), 2);
  assert.equal(b.length, offB + 4);
});

Deno.test("qnat double-quantized scales follow the documented scheme", () => {
  const scales = new Float32Array(300);
  for (let i = 0; i < 300; i++) scales[i] = (i % 256) / 10;
  scales[299] = 0;
  const { quantized, factors } = quantizeQnatScales(scales);
  assert.equal(factors.length, 2);
  assert.equal(factors[0], Math.fround(Math.fround(25.5) / 255));
  // blocks 256..298 hold 0 .. 4.2 (299 was zeroed): the group's max is 42/10
  assert.equal(factors[1], Math.fround(Math.fround(4.2) / 255));
  assert.equal(quantized[255], 255);
  assert.equal(quantized[0], 0);
  assert.equal(quantized[1], 1); // 0.1 / 0.1
  assert.equal(quantized[299], 0);
  const back = dequantizeQnatScales(quantized, factors);
  for (let i = 0; i < 300; i++) {
    const f = factors[Math.floor(i / 256)];
    assert.ok(Math.abs(back[i] - scales[i]) <= f / 2 + 1e-6, `scale ${i}`);
  }
  const zeros = quantizeQnatScales(new Float32Array(3));
  assert.deepEqual([...zeros.quantized, ...zeros.factors], [0, 0, 0, 0]);
});

Deno.test("qnat writer rejects bad plans and bad data", async () => {
  const sink = () => memorySink();
  assert.throws(() => new QnatWriter(sink(), { flags: 4 }, []), RangeError);
  assert.throws(
    () => new QnatWriter(sink(), {}, [{ name: "a", shape: [64], blockSize: 63 }]),
    RangeError,
  );
  assert.throws(
    () =>
      new QnatWriter(sink(), {}, [
        { name: "a", shape: [2], blockSize: 0 },
        { name: "a", shape: [2], blockSize: 0 },
      ]),
    RangeError,
  );
  assert.throws(
    () => new QnatWriter(sink(), {}, [{ name: "a", shape: [-1], blockSize: 0 }]),
    RangeError,
  );
  const w = new QnatWriter(sink(), {}, [{ name: "a", shape: [256], blockSize: 64 }]);
  await assert.rejects(() => w.writeTensorData(new Float32Array(64)), Error); // header first
  await w.writeHeader();
  await assert.rejects(() => w.writeTensorData(new Float32Array(100)), RangeError); // partial block
  await assert.rejects(() => w.writeTensorData(new Float32Array(512)), RangeError); // too many
  await w.writeTensorData(new Float32Array(128));
  await assert.rejects(() => w.finish(), /has 128 of 256 values/);
  const aborted = memorySink();
  await assert.rejects(
    () => writeQnat(aborted, {}, [{ name: "x", shape: [4], data: new Float32Array(3) }]),
    /has 3 values, its shape needs 4/,
  );
  assert.equal(aborted.position, 0, "sink aborted");
});
