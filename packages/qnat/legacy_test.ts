/**
 * Files as qlora-rs 1.x `export_native` (src/native.rs, unchanged from 1.0.0 to 1.0.5) writes
 * them, built here from that writer's documented layout:
 * - header: "QNAT", u32 1, u32 flags = 0, u64 metadata size = 0, u32 count, u32 0 (28 bytes);
 * - metadata: name, type (u32 length + UTF-8), u8 compute dtype;
 * - tensor headers with offsets computed as if the header were 32 bytes and the metadata
 *   4 + 11 + 4 + 8 + 1 = 28 bytes, whatever the real names are;
 * - per tensor: codes (low nibble first), f32 scales, [f32 zero points], [u8 quantized scales,
 *   one f32 factor], where quantized scales are `clamp(s / f + 128, 0, 255)` with `f = max|s| / 127`.
 */
import assert from "node:assert/strict";
import { bytesSource, FormatError } from "@quantx/core";
import { NF4_CODEBOOK } from "@quantx/kernels";
import { gaussian } from "../../tests/support/random.ts";
import { openQnat } from "./mod.ts";

interface RsTensor {
  name: string;
  shape: number[];
  blockSize: number;
  values: Float32Array;
  zeroPoints?: boolean;
  doubleQuant?: boolean;
}

interface RsQuantized {
  data: Uint8Array;
  scales: Float32Array;
  zeroPoints?: Float32Array;
  scalesQuantized?: Uint8Array;
  scalesScales?: Float32Array;
}

const LEVELS = Float32Array.from(NF4_CODEBOOK);

/** qlora-rs `quantize_per_tensor`: nearest level, scale = absmax or 1, low nibble first. */
function rsQuantize(t: RsTensor): RsQuantized {
  const n = t.values.length, bs = t.blockSize, blocks = n / bs;
  const data = new Uint8Array(n / 2);
  const scales = new Float32Array(blocks);
  const nearest = (v: number) => {
    let best = 0, dist = Infinity;
    for (let i = 0; i < 16; i++) {
      const d = Math.abs(Math.fround(v - LEVELS[i]));
      if (d < dist) [best, dist] = [i, d];
    }
    return best;
  };
  for (let b = 0; b < blocks; b++) {
    let absmax = 0;
    for (let i = 0; i < bs; i++) absmax = Math.max(absmax, Math.abs(t.values[b * bs + i]));
    const scale = absmax > 0 ? absmax : 1;
    scales[b] = scale;
    for (let i = 0; i < bs; i += 2) {
      const q0 = nearest(Math.fround(t.values[b * bs + i] / scale));
      const q1 = nearest(Math.fround(t.values[b * bs + i + 1] / scale));
      data[(b * bs + i) / 2] = (q1 << 4) | q0;
    }
  }
  const q: RsQuantized = { data, scales };
  if (t.zeroPoints) {
    q.zeroPoints = new Float32Array(blocks);
    for (let b = 0; b < blocks; b++) {
      const min = Math.min(...t.values.subarray(b * bs, b * bs + bs));
      q.zeroPoints[b] = scales[b] > 0 ? -min / scales[b] : 0;
    }
  }
  if (t.doubleQuant) {
    const absmax = Math.max(...scales.map(Math.abs));
    const f = Math.fround(absmax / 127);
    q.scalesQuantized = Uint8Array.from(
      scales,
      (s) => Math.trunc(Math.min(255, Math.max(0, Math.fround(Math.fround(s / f) + 128)))),
    );
    q.scalesScales = new Float32Array([f]);
  }
  return q;
}

/** Bytes of a file as qlora-rs 1.x export_native writes it. */
function rsFile(
  tensors: RsTensor[],
  meta = { name: "qlora-model", type: "qlora", dtype: 0 },
): { bytes: Uint8Array; quantized: RsQuantized[] } {
  const enc = new TextEncoder();
  const quantized = tensors.map(rsQuantize);
  const parts: number[] = [];
  const u8 = (v: number) => parts.push(v & 255);
  const u32 = (v: number) => [0, 8, 16, 24].forEach((s) => u8(v >>> s));
  const u64 = (v: number) => {
    u32(v % 2 ** 32);
    u32(Math.floor(v / 2 ** 32));
  };
  const str = (s: string) => {
    const b = enc.encode(s);
    u32(b.length);
    b.forEach(u8);
  };
  const bytesOf = (a: Float32Array | Uint8Array) =>
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength).forEach(u8);
  enc.encode("QNAT").forEach(u8);
  u32(1);
  u32(0);
  u64(0);
  u32(tensors.length);
  u32(0);
  str(meta.name);
  str(meta.type);
  u8(meta.dtype);
  // calculate_header_size: 32 + (4 + 11 + 4 + 8 + 1) + per-tensor header sizes
  let current = 32 + 28;
  for (const t of tensors) current += 4 + enc.encode(t.name).length + 4 + t.shape.length * 8 + 16;
  const sizes = quantized.map((q) =>
    q.data.length + q.scales.length * 4 + (q.zeroPoints?.length ?? 0) * 4 +
    (q.scalesQuantized?.length ?? 0) + (q.scalesScales?.length ?? 0) * 4
  );
  tensors.forEach((t, i) => {
    str(t.name);
    u32(t.shape.length);
    t.shape.forEach(u64);
    u32(t.blockSize);
    u64(current);
    u32(quantized[i].scales.length);
    current += sizes[i];
  });
  for (const q of quantized) {
    bytesOf(q.data);
    bytesOf(q.scales);
    if (q.zeroPoints) bytesOf(q.zeroPoints);
    if (q.scalesQuantized) bytesOf(q.scalesQuantized);
    if (q.scalesScales) bytesOf(q.scalesScales);
  }
  return { bytes: Uint8Array.from(parts), quantized };
}

/** qlora-rs `dequantize_nf4` (per-tensor) with the f32 scales. */
function rsDequantize(q: RsQuantized, n: number, bs: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const byte = q.data[i >> 1];
    const code = i & 1 ? byte >> 4 : byte & 15;
    const b = Math.floor(i / bs);
    const level = Math.fround(LEVELS[code] + (q.zeroPoints?.[b] ?? 0));
    out[i] = level * q.scales[b];
  }
  return out;
}

function tensors(): RsTensor[] {
  return [
    { name: "layers.0.q_proj", shape: [8, 64], blockSize: 64, values: gaussian(512, 1) },
    { name: "zp", shape: [4, 32], blockSize: 32, values: gaussian(128, 2), zeroPoints: true },
    { name: "dq", shape: [2, 3, 64], blockSize: 64, values: gaussian(384, 3), doubleQuant: true },
    {
      name: "both",
      shape: [16, 16],
      blockSize: 16,
      values: gaussian(256, 4, 0.1),
      zeroPoints: true,
      doubleQuant: true,
    },
    { name: "per_channel", shape: [3, 10], blockSize: 10, values: gaussian(30, 5) },
  ];
}

for (
  const meta of [
    { name: "qlora-model", type: "qlora", dtype: 0 }, // the default NativeMetadata
    { name: "a-much-longer-model-name-ü", type: "llama-3", dtype: 2 },
    { name: "", type: "", dtype: 1 },
  ]
) {
  Deno.test(`qnat reads a qlora-rs 1.x file (model name ${JSON.stringify(meta.name)})`, async () => {
    const list = tensors();
    const { bytes, quantized } = rsFile(list, meta);
    const file = await openQnat(bytesSource(bytes, "rs.qnat"));
    assert.equal(file.header.legacy, true);
    assert.equal(file.header.metadataLength, 0);
    assert.equal(file.metadata.modelName, meta.name);
    assert.equal(file.metadata.modelType, meta.type);
    assert.equal(file.metadata.computeDtype, ["f32", "f16", "bf16"][meta.dtype]);
    const metaSize = 9 + new TextEncoder().encode(meta.name + meta.type).length;
    for (const [i, t] of list.entries()) {
      const info = file.tensors[i];
      assert.equal(info.name, t.name);
      assert.deepEqual(info.shape, t.shape);
      assert.equal(info.zeroPoints, !!t.zeroPoints, `${t.name} zero points detected`);
      assert.equal(info.doubleQuant, !!t.doubleQuant, `${t.name} double quant detected`);
      assert.equal(info.recordedOffset - info.offset, 32 - metaSize, "offsets off by 32 - M");
      const raw = await file.readRaw(t.name);
      const q = quantized[i];
      assert.deepEqual(raw.codes, q.data);
      assert.deepEqual(raw.scales, q.scales);
      assert.deepEqual(raw.zeroPoints, q.zeroPoints);
      assert.deepEqual(raw.quantizedScales, q.scalesQuantized);
      assert.deepEqual(raw.scaleFactors, q.scalesScales);
      const out = await file.readF32(t.name);
      assert.deepEqual(out, rsDequantize(q, t.values.length, t.blockSize));
      const part = await file.readF32(t.name, 3, 17);
      assert.deepEqual(part, out.subarray(3, 20));
    }
  });
}

Deno.test("qnat rejects damaged qlora-rs 1.x files with FormatError", async () => {
  const { bytes } = rsFile(tensors());
  // one byte short: the last tensor's size no longer matches any section combination
  await assert.rejects(
    () => openQnat(bytesSource(bytes.subarray(0, bytes.length - 1))),
    FormatError,
  );
  // flags set while the metadata length is 0
  const flagged = bytes.slice();
  flagged[8] = 1;
  await assert.rejects(() => openQnat(bytesSource(flagged)), /metadata length 0/);
  // an odd block size cannot be laid out
  const odd = rsFile([{ name: "o", shape: [2, 5], blockSize: 5, values: gaussian(10, 1) }]);
  await assert.rejects(() => openQnat(bytesSource(odd.bytes)), /even block size/);
});
