import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fp32ToBf16 } from "./cpu/half.ts";
import {
  BNB_DYNAMIC_MAP,
  dequantizeFp4,
  dequantizeNf4,
  doubleDequantize,
  doubleQuantize,
  FP4_CODEBOOK,
  NF4_CODEBOOK,
  quantizeBlockwiseDynamic,
  quantizeFp4,
  quantizeNf4,
} from "./nf4.ts";
import { gaussian, rng } from "../../tests/support/random.ts";

const SHARED = new URL("../../../shared/", import.meta.url);
const fr = Math.fround;

async function bytes(rel: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(new URL(rel, SHARED)));
}

function f32(b: Uint8Array): Float32Array {
  const c = b.slice();
  return new Float32Array(c.buffer, 0, c.byteLength / 4);
}

function bitsEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i}: ${a[i]} != ${b[i]}`);
  }
}

/** Independent NF4 reference: nearest codebook value by float32 midpoint, counting from below. */
function nf4Reference(x: number): number {
  let c = 0;
  for (let i = 0; i < 15; i++) if (x > fr(fr(NF4_CODEBOOK[i] + NF4_CODEBOOK[i + 1]) / 2)) c++;
  return c;
}

/** bitsandbytes' dQuantizeFP4 decision tree, transcribed literally. */
function fp4Tree(x: number): number {
  const sign = x < 0 ? 8 : 0;
  x = Math.abs(x);
  if (x > fr(0.29166667)) {
    if (x > fr(0.583333)) return (x > fr(0.8333333) ? 3 : 2) + sign;
    return (x > fr(0.4166667) ? 5 : 4) + sign;
  }
  if (x > fr(0.0859375)) return (x > fr(0.20833333) ? 7 : 6) + sign;
  return (x > fr(0.00260417) ? 1 : 0) + sign;
}

interface BnbSlice {
  format: number;
  n: number;
  blockSize: number;
  weight: Uint8Array;
  absmax: Uint8Array;
  quantMap: Float32Array;
  nestedAbsmax: Float32Array;
  nestedQuantMap: Float32Array;
  expected: Uint16Array;
  nestedOffset: number;
}

async function slice(name: string): Promise<BnbSlice> {
  const b = await bytes(`fixtures/real-bnb-slices/${name}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const h = Array.from({ length: 9 }, (_, i) => v.getUint32(i * 4, true));
  let o = 40;
  const take = (len: number) => {
    const s = b.subarray(o, o + len);
    o += len;
    return s;
  };
  const [format, n, blockSize, wl, al, ql, nal, nql, el] = h;
  const weight = take(wl), absmax = take(al), quantMap = f32(take(ql));
  const nestedAbsmax = f32(take(nal)), nestedQuantMap = f32(take(nql));
  const e = take(el).slice();
  assert.equal(o, b.byteLength);
  return {
    format,
    n,
    blockSize,
    weight,
    absmax,
    quantMap,
    nestedAbsmax,
    nestedQuantMap,
    expected: new Uint16Array(e.buffer),
    nestedOffset: v.getFloat32(36, true),
  };
}

function assertBf16(values: Float32Array, expected: Uint16Array, what: string): void {
  assert.equal(values.length, expected.length, `${what}: count`);
  for (let i = 0; i < values.length; i++) {
    const got = fp32ToBf16(values[i]);
    if (got !== expected[i]) {
      assert.fail(
        `${what}: element ${i}: bf16 0x${got.toString(16)} != 0x${expected[i].toString(16)}`,
      );
    }
  }
}

Deno.test("NF4 matches the shared vectors (codes, absmax, dequantized)", async () => {
  const manifest = JSON.parse(
    new TextDecoder().decode(await bytes("vectors/ggml/manifest.json")),
  ) as { sets: { input: string; quantized: Record<string, Record<string, string | number>> }[] };
  assert.ok(manifest.sets.length > 0);
  for (const set of manifest.sets) {
    const nf4 = set.quantized.nf4;
    assert.equal(nf4.blocksize, 64);
    const input = f32(await bytes(`vectors/ggml/${set.input}`));
    const { codes, absmax } = quantizeNf4(input);
    assert.deepEqual(codes, await bytes(`vectors/ggml/${nf4.file}`));
    bitsEqual(absmax, f32(await bytes(`vectors/ggml/${nf4.absmax}`)), "absmax");
    const deq = dequantizeNf4(codes, absmax, input.length);
    bitsEqual(deq, f32(await bytes(`vectors/ggml/${nf4.file}.dequant.f32`)), "dequantized");
  }
});

Deno.test("NF4 codes equal the midpoint-count reference, odd lengths and zero blocks", () => {
  const r = rng(7);
  const src = gaussian(64 * 9 + 37, 3);
  for (let i = 0; i < 64; i++) src[64 * 2 + i] = 0; // an all-zero block
  for (let i = 0; i < 64; i++) src[64 * 3 + i] = 5; // constant
  src[64 * 4 + 3] = NaN;
  src[64 * 5 + 1] = Infinity;
  // values exactly on midpoints (scaled by absmax 1)
  src.fill(0.125, 64 * 6, 64 * 7);
  for (let i = 0; i < 15; i++) src[64 * 6 + i] = fr(fr(NF4_CODEBOOK[i] + NF4_CODEBOOK[i + 1]) / 2);
  src[64 * 6 + 20] = 1;
  src[64 * 7 + 5] = -1e-30;
  for (let i = 64 * 8; i < src.length; i++) src[i] = fr((r() - 0.5) * 1e-20);
  const { codes, absmax } = quantizeNf4(src);
  assert.equal(codes.length, Math.ceil(src.length / 2));
  assert.equal(absmax.length, Math.ceil(src.length / 64));
  assert.equal(absmax[2], 0);
  for (let i = 64 * 2; i < 64 * 3; i += 2) assert.equal(codes[i >> 1], 0);
  assert.equal(absmax[5], Infinity);
  for (let i = 0; i < src.length + 1; i++) {
    const b = Math.floor(i / 64);
    const x = i < src.length ? src[i] : 0;
    let m = 0;
    for (let j = b * 64; j < Math.min(src.length, b * 64 + 64); j++) {
      if (Math.abs(src[j]) > m) m = Math.abs(src[j]);
    }
    if (b < absmax.length) assert.equal(absmax[b], fr(m));
    const want = nf4Reference(fr(x * fr(1 / fr(m))));
    const byte = codes[i >> 1];
    if (i >= codes.length * 2) break;
    assert.equal((i & 1) === 0 ? byte >> 4 : byte & 15, want, `element ${i}`);
  }
  // on a midpoint the lower code wins
  for (let i = 0; i < 15; i++) {
    const byte = codes[(64 * 6 + i) >> 1];
    assert.equal((i & 1) === 0 ? byte >> 4 : byte & 15, i, `midpoint ${i}`);
  }
  // the odd tail pads a zero value (code 7 when the block is not all zero)
  assert.equal(codes[codes.length - 1] & 15, 7);
  const back = dequantizeNf4(codes, absmax, src.length);
  for (let i = 0; i < src.length; i++) {
    const byte = codes[i >> 1];
    const c = (i & 1) === 0 ? byte >> 4 : byte & 15;
    assert.ok(Object.is(back[i], fr(NF4_CODEBOOK[c] * absmax[Math.floor(i / 64)])));
  }
});

Deno.test("NF4 with other block sizes is blockwise", () => {
  const src = gaussian(1000, 11);
  for (const bs of [32, 128, 256, 4096]) {
    const { codes, absmax } = quantizeNf4(src, bs);
    assert.equal(absmax.length, Math.ceil(1000 / bs));
    const first = quantizeNf4(src.subarray(0, bs), bs);
    assert.deepEqual(codes.subarray(0, bs / 2), first.codes.subarray(0, bs / 2));
    const back = dequantizeNf4(codes, absmax, 1000, bs);
    for (let i = 0; i < 1000; i++) {
      assert.ok(Math.abs(back[i] - src[i]) <= 0.21 * absmax[Math.floor(i / bs)]);
    }
  }
  assert.throws(() => quantizeNf4(src, 0), RangeError);
  assert.throws(() => dequantizeNf4(new Uint8Array(1), new Float32Array(1), 4), RangeError);
  assert.throws(() => dequantizeNf4(new Uint8Array(64), new Float32Array(1), 128), RangeError);
});

Deno.test("FP4 codebook and quantization follow bitsandbytes' dQuantizeFP4", () => {
  assert.ok(Object.is(FP4_CODEBOOK[8], -0));
  assert.equal(FP4_CODEBOOK[3], 1);
  assert.equal(FP4_CODEBOOK[11], -1);
  const cases: [number, number][] = [
    [1, 3],
    [0.8333333, 2], // not above the threshold 0.8333333f
    [0.834, 3],
    [0.6, 2],
    [0.583333, 5],
    [0.5, 5],
    [0.4166667, 4],
    [0.3, 4],
    [0.29166667, 7],
    [0.25, 7],
    [0.20833333, 6],
    [0.1, 6],
    [0.0859375, 1],
    [0.003, 1],
    [0.00260417, 0],
    [0, 0],
    [-0, 0],
    [-0.001, 8],
    [-0.25, 15],
    [-1, 11],
    [NaN, 0],
  ];
  for (const [x, code] of cases) {
    const src = new Float32Array(64);
    src[0] = 1; // absmax 1, so scaled == x
    src[1] = x;
    const { codes } = quantizeFp4(src);
    assert.equal(codes[0] & 15, code, `fp4(${x})`);
    assert.equal(codes[0] >> 4, 3);
  }
  const src = gaussian(64 * 5 + 3, 5);
  src[70] = NaN;
  src[71] = -1e-30;
  const { codes, absmax } = quantizeFp4(src);
  for (let i = 0; i < src.length + 1; i++) {
    const b = Math.min(Math.floor(i / 64), absmax.length - 1);
    const x = i < src.length ? src[i] : 0;
    const byte = codes[i >> 1];
    const want = fp4Tree(fr(x * fr(1 / absmax[b])));
    assert.equal((i & 1) === 0 ? byte >> 4 : byte & 15, want, `fp4 element ${i}`);
  }
  const back = dequantizeFp4(codes, absmax, src.length);
  for (let i = 0; i < src.length; i++) {
    const b = Math.floor(i / 64);
    if (Number.isNaN(src[i])) continue;
    assert.ok(Math.abs(back[i] - src[i]) <= 0.17 * absmax[b] + 1e-7, `element ${i}`);
  }
});

Deno.test("real bitsandbytes slices decode exactly (NF4, NF4 double-quant, FP4)", async () => {
  const nf4 = await slice("llama_1b_nf4.bin");
  assert.equal(nf4.format, 0);
  bitsEqual(nf4.quantMap, NF4_CODEBOOK, "nf4 quant_map");
  const nf4Vals = dequantizeNf4(nf4.weight, f32(nf4.absmax), nf4.n, nf4.blockSize);
  assertBf16(nf4Vals, nf4.expected, "nf4");

  const fp4 = await slice("llama_1b_fp4.bin");
  // the stored map has +0 at code 8; decoding is sign-magnitude (-0)
  const stored = FP4_CODEBOOK.slice();
  stored[8] = 0;
  bitsEqual(fp4.quantMap, stored, "fp4 quant_map");
  const fp4Vals = dequantizeFp4(fp4.weight, f32(fp4.absmax), fp4.n, fp4.blockSize);
  assertBf16(fp4Vals, fp4.expected, "fp4");

  const dq = await slice("llama_1b_nf4_double_quant.bin");
  assert.equal(dq.format, 2);
  bitsEqual(dq.nestedQuantMap, BNB_DYNAMIC_MAP, "nested_quant_map vs BNB_DYNAMIC_MAP");
  const absmax = doubleDequantize(dq.absmax, dq.nestedAbsmax, dq.nestedOffset, 256);
  assertBf16(dequantizeNf4(dq.weight, absmax, dq.n, dq.blockSize), dq.expected, "nf4 double-quant");

  // Requantizing the decoded values gives the stored codes back wherever the block's absmax is
  // recovered (a code of magnitude 1 in the block); FP4's -0 (code 8) comes back as code 0.
  for (const [s, vals, q] of [[nf4, nf4Vals, quantizeNf4], [fp4, fp4Vals, quantizeFp4]] as const) {
    const again = q(vals, s.blockSize);
    const am = f32(s.absmax);
    let checked = 0;
    for (let b = 0; b < am.length; b++) {
      if (again.absmax[b] !== am[b]) continue;
      checked++;
      for (let i = b * 32; i < b * 32 + 32; i++) {
        const fix = (c: number) => (s === fp4 && c === 8 ? 0 : c);
        const w = s.weight[i];
        assert.equal(again.codes[i], (fix(w >> 4) << 4) | fix(w & 15), `block ${b} byte ${i}`);
      }
    }
    assert.ok(checked > am.length / 2, `only ${checked} blocks recovered`);
  }

  // Requantizing the centered nested values reproduces the stored 8-bit codes (one extra value
  // equal to the nested absmax pins the block's scale).
  const n = dq.absmax.length;
  const centered = new Float32Array(n + 1);
  for (let i = 0; i < n; i++) centered[i] = BNB_DYNAMIC_MAP[dq.absmax[i]] * dq.nestedAbsmax[0];
  centered[n] = dq.nestedAbsmax[0];
  const re = quantizeBlockwiseDynamic(centered, 256);
  assert.equal(re.absmax[0], dq.nestedAbsmax[0]);
  assert.deepEqual(re.quantized.subarray(0, n), dq.absmax);
});

Deno.test("BNB_DYNAMIC_MAP shape: sorted, 256 values in [-1, 1], 0 and 1 present", () => {
  assert.equal(BNB_DYNAMIC_MAP.length, 256);
  for (let i = 1; i < 256; i++) assert.ok(BNB_DYNAMIC_MAP[i - 1] <= BNB_DYNAMIC_MAP[i]);
  assert.equal(BNB_DYNAMIC_MAP[255], 1);
  assert.ok(BNB_DYNAMIC_MAP.includes(0));
  assert.equal(fr(BNB_DYNAMIC_MAP[0]), fr(-0.99296875));
});

Deno.test("blockwise 8-bit codes are the nearest map entries", () => {
  const r = rng(3);
  const src = new Float32Array(4096);
  for (let i = 0; i < src.length; i++) src[i] = fr((r() * 2 - 1) ** 3);
  src[0] = 1;
  const { quantized, absmax } = quantizeBlockwiseDynamic(src, 4096);
  assert.equal(absmax[0], 1);
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    const got = Math.abs(BNB_DYNAMIC_MAP[quantized[i]] - x);
    let best = Infinity;
    for (const v of BNB_DYNAMIC_MAP) best = Math.min(best, Math.abs(v - x));
    assert.ok(got <= best + 1e-7, `x=${x}: code ${quantized[i]} off by ${got}, best ${best}`);
  }
});

Deno.test("double quantization round trip", () => {
  const absmax = new Float32Array(700);
  const r = rng(9);
  for (let i = 0; i < absmax.length; i++) absmax[i] = fr(0.01 + r() * 0.1);
  const { quantized, nestedAbsmax, offset } = doubleQuantize(absmax);
  assert.equal(quantized.length, 700);
  assert.equal(nestedAbsmax.length, 3);
  let sum = 0;
  for (const a of absmax) sum += a;
  assert.equal(offset, fr(sum / 700));
  const back = doubleDequantize(quantized, nestedAbsmax, offset);
  for (let i = 0; i < 700; i++) {
    const b = Math.floor(i / 256);
    assert.ok(Math.abs(back[i] - absmax[i]) <= nestedAbsmax[b] * 0.02, `absmax ${i}`);
    assert.equal(
      back[i],
      fr(fr(BNB_DYNAMIC_MAP[quantized[i]] * nestedAbsmax[b]) + offset),
    );
  }
  // a single value: centered to 0, nested absmax 0, decodes back exactly to the offset
  const one = doubleQuantize(new Float32Array([0.5]));
  assert.equal(one.offset, 0.5);
  assert.equal(one.nestedAbsmax[0], 0);
  assert.equal(doubleDequantize(one.quantized, one.nestedAbsmax, one.offset)[0], 0.5);
  assert.throws(() => doubleDequantize(new Uint8Array(300), new Float32Array(1), 0), RangeError);
});
