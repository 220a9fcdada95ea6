/**
 * The k-quant CPU kernels (Q2_K..Q6_K) against libggml: the golden vectors in ../shared/vectors,
 * and random inputs of many shapes quantized and dequantized by libggml itself in this process.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { ggmlDequantize, ggmlQuantize } from "../../../tests/support/libggml.ts";
import { gaussian, rng } from "../../../tests/support/random.ts";
import { dequantizeQ2_K, quantizeQ2_K } from "./q2_k.ts";
import { dequantizeQ3_K, quantizeQ3_K } from "./q3_k.ts";
import { dequantizeQ4_K, quantizeQ4_K } from "./q4_k.ts";
import { dequantizeQ5_K, quantizeQ5_K } from "./q5_k.ts";
import { dequantizeQ6_K, quantizeQ6_K } from "./q6_k.ts";
import { nearestInt } from "./kquant_common.ts";

type Quantize = (src: Float32Array, dst: Uint8Array) => void;
type Dequantize = (src: Uint8Array, dst: Float32Array) => void;

const KINDS: { type: string; size: number; q: Quantize; dq: Dequantize }[] = [
  { type: "q2_k", size: 84, q: quantizeQ2_K, dq: dequantizeQ2_K },
  { type: "q3_k", size: 110, q: quantizeQ3_K, dq: dequantizeQ3_K },
  { type: "q4_k", size: 144, q: quantizeQ4_K, dq: dequantizeQ4_K },
  { type: "q5_k", size: 176, q: quantizeQ5_K, dq: dequantizeQ5_K },
  { type: "q6_k", size: 210, q: quantizeQ6_K, dq: dequantizeQ6_K },
];

const VECTORS = new URL("../../../../shared/vectors/ggml/", import.meta.url);

async function readVector(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(new URL(name, VECTORS)));
}

function f32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** Index of the first differing byte, or -1. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Same float32 bit patterns (any NaN matches any NaN). */
function sameFloats(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  }
  return -1;
}

function checkQuantize(kind: (typeof KINDS)[number], x: Float32Array, label: string): void {
  const expected = ggmlQuantize(kind.type, x, x.length / 256);
  const got = new Uint8Array(expected.length);
  kind.q(x, got);
  const at = firstDiff(got, expected);
  assert.equal(
    at,
    -1,
    `${kind.type} ${label}: byte ${at} (block ${Math.floor(at / kind.size)}, offset ${
      at % kind.size
    }) is ${got[at]}, libggml wrote ${expected[at]}`,
  );
}

// ------------------------------------------------------------------ inputs

const BLOCKS = 24; // super-blocks per random case

/** Named generators of BLOCKS * 256 float32 values. */
const CASES: [string, (seed: number) => Float32Array][] = [
  ["gaussian std 0.02", (s) => gaussian(BLOCKS * 256, s, 0.02)],
  ["gaussian std 1", (s) => gaussian(BLOCKS * 256, s, 1)],
  ["gaussian std 1e-3 mean 0.01", (s) => gaussian(BLOCKS * 256, s, 1e-3, 0.01)],
  ["gaussian std 300", (s) => gaussian(BLOCKS * 256, s, 300)],
  ["heavy tails", (s) => {
    const g = gaussian(BLOCKS * 256, s, 1), h = gaussian(BLOCKS * 256, s + 1000, 1);
    return g.map((v, i) => v * Math.exp(1.5 * h[i]) * 0.05);
  }],
  ["rare outliers", (s) => {
    const x = gaussian(BLOCKS * 256, s, 0.02), r = rng(s);
    for (let i = 0; i < x.length; i++) if (r() < 0.004) x[i] = (r() - 0.5) * 40;
    return x;
  }],
  ["sparse", (s) => {
    const x = gaussian(BLOCKS * 256, s, 1), r = rng(s + 7);
    return x.map((v) => (r() < 0.9 ? 0 : v));
  }],
  ["all positive", (s) => gaussian(BLOCKS * 256, s, 1).map(Math.abs)],
  ["all negative", (s) => gaussian(BLOCKS * 256, s, 1).map((v) => -Math.abs(v) - 0.5)],
  ["small integers (ties)", (s) => {
    const r = rng(s);
    return new Float32Array(BLOCKS * 256).map(() => Math.floor(r() * 17) - 8);
  }],
  ["half integers (ties)", (s) => {
    const r = rng(s);
    return new Float32Array(BLOCKS * 256).map(() => (Math.floor(r() * 32) - 16) / 2);
  }],
  ["few levels", (s) => {
    const r = rng(s);
    return new Float32Array(BLOCKS * 256).map(() => [0, 0.25, 1, -3][Math.floor(r() * 4)]);
  }],
  ["tiny 1e-20", (s) => gaussian(BLOCKS * 256, s, 1e-20)],
  ["below GROUP_MAX_EPS", (s) => gaussian(BLOCKS * 256, s, 1e-16)],
  ["subnormal", (s) => gaussian(BLOCKS * 256, s, 1e-39)],
  ["large 1e6 (fp16 overflow)", (s) => gaussian(BLOCKS * 256, s, 1e6)],
  ["huge 1e14 (float32 overflow in C's sums)", (s) => gaussian(BLOCKS * 256, s, 1e14)],
  ["huge 1e30", (s) => gaussian(BLOCKS * 256, s, 1e30)],
  ["mixed block scales", (s) => {
    const x = gaussian(BLOCKS * 256, s, 1), r = rng(s + 3);
    for (let b = 0; b < x.length; b += 16) {
      const k = 10 ** (r() * 20 - 12);
      for (let i = b; i < b + 16; i++) x[i] *= k;
    }
    return x;
  }],
  ["NaN and infinities", (s) => {
    const x = gaussian(BLOCKS * 256, s, 1), r = rng(s + 11);
    for (let i = 0; i < x.length; i++) {
      const u = r();
      if (u < 0.002) x[i] = NaN;
      else if (u < 0.004) x[i] = u < 0.003 ? Infinity : -Infinity;
    }
    return x;
  }],
  ["constant rows", (s) => {
    const x = new Float32Array(BLOCKS * 256), r = rng(s);
    for (let b = 0; b < x.length; b += 256) x.fill((r() - 0.5) * 10, b, b + 256);
    return x;
  }],
  ["constant sub-blocks", (s) => {
    const x = new Float32Array(BLOCKS * 256), r = rng(s);
    for (let b = 0; b < x.length; b += 16) x.fill(r() < 0.3 ? 0 : (r() - 0.5) * 4, b, b + 16);
    return x;
  }],
  ["zeros", () => new Float32Array(BLOCKS * 256)],
  ["negative zeros and one value", (s) => {
    const x = new Float32Array(BLOCKS * 256).fill(-0), r = rng(s);
    for (let b = 0; b < x.length; b += 32) x[b + Math.floor(r() * 32)] = r() - 0.5;
    return x;
  }],
  ["bf16-exact values", (s) => {
    const x = gaussian(BLOCKS * 256, s, 1), u = new Uint32Array(x.buffer);
    for (let i = 0; i < u.length; i++) u[i] &= 0xffff0000;
    return x;
  }],
  ["linear ramp", (s) => {
    const x = new Float32Array(BLOCKS * 256), r = rng(s);
    for (let b = 0; b < x.length; b += 256) {
      const a = r() * 2 - 1, d = (r() - 0.5) * 0.01;
      for (let i = 0; i < 256; i++) x[b + i] = a + d * i;
    }
    return x;
  }],
];

// ------------------------------------------------------------------ tests

Deno.test("nearestInt: round half to even, and ggml's bits outside its range", () => {
  assert.equal(nearestInt(0.5), 0);
  assert.equal(nearestInt(1.5), 2);
  assert.equal(nearestInt(2.5), 2);
  assert.equal(nearestInt(-0.5), 0);
  assert.equal(nearestInt(-1.5), -2);
  assert.equal(nearestInt(4194303), 4194303);
  assert.equal(nearestInt(-4194303), -4194303);
  assert.equal(nearestInt(Infinity), -4194304);
  assert.equal(nearestInt(-Infinity), -4194304);
  assert.equal(nearestInt(NaN), 0);
  // beyond +-4194303 the mantissa bits of fval + 12582912.f, as C gets them
  assert.equal(nearestInt(1e7), -1291456);
  assert.equal(nearestInt(-5e6), 2582912);
});

Deno.test("k-quants: golden vectors (quantize and gguf-py dequantize)", async () => {
  const manifest = JSON.parse(new TextDecoder().decode(await readVector("manifest.json")));
  for (const set of manifest.sets) {
    const x = f32(await readVector(set.input));
    assert.equal(x.length, set.rows * set.cols);
    for (const kind of KINDS) {
      const expected = await readVector(set.quantized[kind.type].file);
      const got = new Uint8Array(expected.length);
      kind.q(x, got);
      assert.equal(firstDiff(got, expected), -1, `${kind.type} ${set.input}: quantized bytes`);
      const deq = f32(await readVector(set.dequantized[kind.type].file));
      const out = new Float32Array(x.length);
      kind.dq(expected, out);
      assert.equal(sameFloats(out, deq), -1, `${kind.type} ${set.input}: dequantized values`);
    }
  }
});

for (const kind of KINDS) {
  Deno.test(`${kind.type}: quantize equals libggml on random inputs`, () => {
    for (const [label, make] of CASES) {
      for (const seed of [1, 2, 3]) checkQuantize(kind, make(seed * 7919 + label.length), label);
    }
    // many seeds of the common case
    for (let seed = 100; seed < 112; seed++) {
      checkQuantize(kind, gaussian(64 * 256, seed, 0.02 * (1 + (seed % 5))), `seed ${seed}`);
    }
  });

  Deno.test(`${kind.type}: dequantize equals libggml`, () => {
    // bytes from quantizing, then arbitrary bytes (any scale, including fp16 inf and NaN)
    const r = rng(42);
    const x = gaussian(BLOCKS * 256, 5, 0.5);
    const blocks = [ggmlQuantize(kind.type, x, BLOCKS)];
    blocks.push(new Uint8Array(BLOCKS * kind.size).map(() => Math.floor(r() * 256)));
    for (const bytes of blocks) {
      const n = (bytes.length / kind.size) * 256;
      const expected = ggmlDequantize(kind.type, bytes, n);
      const got = new Float32Array(n);
      kind.dq(bytes, got);
      const at = sameFloats(got, expected);
      assert.equal(at, -1, `${kind.type}: value ${at} is ${got[at]}, libggml gave ${expected[at]}`);
    }
  });

  Deno.test(`${kind.type}: lengths that are not whole blocks are refused`, () => {
    assert.throws(() => kind.q(new Float32Array(255), new Uint8Array(kind.size)), /multiple of/);
    assert.throws(() => kind.q(new Float32Array(256), new Uint8Array(kind.size - 1)), /bytes/);
    assert.throws(() => kind.dq(new Uint8Array(kind.size), new Float32Array(300)), /multiple of/);
    assert.throws(() => kind.dq(new Uint8Array(kind.size - 1), new Float32Array(256)), /bytes/);
  });
}
