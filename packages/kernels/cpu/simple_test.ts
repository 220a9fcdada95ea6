/**
 * The 32-element block kernels (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL), IQ4_XS and the float
 * conversions on small hand-checked inputs: exact bytes, rounding rules, layouts, and refusals.
 * (Byte-identity with libggml on random inputs is in ../libggml_test.ts.)
 */
import assert from "node:assert/strict";
import { dequantizeIQ4_NL, KVALUES_IQ4NL, quantizeIQ4_NL } from "./iq4_nl.ts";
import { dequantizeIQ4_XS, quantizeIQ4_XS } from "./iq4_xs.ts";
import { dequantizeQ4_0, quantizeQ4_0 } from "./q4_0.ts";
import { dequantizeQ4_1, quantizeQ4_1 } from "./q4_1.ts";
import { dequantizeQ5_0, quantizeQ5_0 } from "./q5_0.ts";
import { dequantizeQ5_1, quantizeQ5_1 } from "./q5_1.ts";
import { dequantizeQ8_0, quantizeQ8_0 } from "./q8_0.ts";
import {
  bf16ArrayToF32,
  dequantizeBF16,
  dequantizeF16,
  f16ArrayToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32BitsToF16,
  quantizeBF16,
  quantizeF16,
} from "./float.ts";

const f32 = (values: number[]): Float32Array => new Float32Array(values);
const range = (n: number, f: (j: number) => number): number[] =>
  Array.from({ length: n }, (_, j) => f(j));

Deno.test("q4_0: d = max / -8, q = min(15, trunc(x/d + 8.5)), first half in low nibbles", () => {
  // x = -16..15: max is -16 (the first of largest magnitude), d = 2
  const x = f32(range(32, (j) => j - 16));
  const out = new Uint8Array(18);
  quantizeQ4_0(x, out);
  assert.deepEqual([out[0], out[1]], [0x00, 0x40]); // fp16 2.0
  const q = range(32, (j) => Math.min(15, Math.trunc((j - 16) / 2 + 8.5)));
  assert.deepEqual([...out.subarray(2)], range(16, (j) => q[j] | (q[j + 16] << 4)));
  assert.equal(q[31], 15); // 16 clamped
  const back = new Float32Array(32);
  dequantizeQ4_0(out, back);
  assert.deepEqual([...back], q.map((v) => (v - 8) * 2));
  // sign of d follows the element of largest magnitude; ties keep the first
  const y = f32(range(32, (j) => (j === 3 ? 4 : j === 9 ? -4 : 1)));
  quantizeQ4_0(y, out);
  assert.deepEqual([out[0], out[1]], [0x00, 0xb8]); // fp16 -0.5
});

Deno.test("q4_0: an all-zero block stores d = -0 (C's 0.0f / -8) and level 8", () => {
  const out = new Uint8Array(36).fill(0xaa);
  quantizeQ4_0(new Float32Array(64), out);
  assert.deepEqual([...out.subarray(0, 18)], [0, 0x80, ...Array(16).fill(0x88)]);
  assert.deepEqual([...out.subarray(18)], [0, 0x80, ...Array(16).fill(0x88)]);
});

Deno.test("q4_1: d = (max - min) / 15, m = min, q = trunc((x - min)/d + 0.5)", () => {
  // min 0, max 15: d = 1; x + 0.5 truncates, so halves round up
  const lo = [0, 15, 0.5, 1.5, 2.5, 7.49, 7.5, 14.5, 3, 4, 5, 6, 7, 8, 9, 10];
  const x = f32([...lo, ...lo.map((v) => 15 - v)]);
  const out = new Uint8Array(20);
  quantizeQ4_1(x, out);
  assert.deepEqual([...out.subarray(0, 4)], [0x00, 0x3c, 0x00, 0x00]); // d = 1, m = 0
  const q = [...x].map((v) => Math.min(15, Math.trunc(v + 0.5)));
  assert.deepEqual([...out.subarray(4)], range(16, (j) => q[j] | (q[j + 16] << 4)));
  assert.equal(q[2], 1); // 0.5 -> 1
  const back = new Float32Array(32);
  dequantizeQ4_1(out, back);
  assert.deepEqual([...back], q);
});

Deno.test("q5_0: d = max / -16, 5th bits in a little-endian u32 (bit j = value j)", () => {
  const x = f32(range(32, (j) => j - 16)); // max -16: d = 1, q = j
  const out = new Uint8Array(22);
  quantizeQ5_0(x, out);
  assert.deepEqual([out[0], out[1]], [0x00, 0x3c]);
  assert.deepEqual([...out.subarray(2, 6)], [0x00, 0x00, 0xff, 0xff]); // values 16..31 have bit 4
  assert.deepEqual([...out.subarray(6)], range(16, (j) => j | (j << 4)));
  const back = new Float32Array(32);
  dequantizeQ5_0(out, back);
  assert.deepEqual([...back], [...x]);
});

Deno.test("q5_1: d = (max - min) / 31, no clamp, high bits like q5_0", () => {
  const x = f32(range(32, (j) => ((j * 7) % 32) + 100)); // a permutation of 100..131
  const out = new Uint8Array(24);
  quantizeQ5_1(x, out);
  assert.deepEqual([out[0], out[1]], [0x00, 0x3c]); // d = 1
  assert.deepEqual([out[2], out[3]], [0x40, 0x56]); // m = 100
  const q = [...x].map((v) => v - 100);
  let qh = 0;
  q.forEach((v, j) => (qh |= (v >> 4) << j));
  assert.deepEqual([...out.subarray(4, 8)], [
    qh & 255,
    (qh >>> 8) & 255,
    (qh >>> 16) & 255,
    qh >>> 24,
  ]);
  assert.deepEqual([...out.subarray(8)], range(16, (j) => (q[j] & 15) | ((q[j + 16] & 15) << 4)));
  const back = new Float32Array(32);
  dequantizeQ5_1(out, back);
  assert.deepEqual([...back], [...x]);
});

Deno.test("q8_0: d = amax / 127, roundf (halves away from zero)", () => {
  const x = f32([
    -127,
    -2.5,
    -1.5,
    -0.5,
    0.5,
    1.5,
    2.5,
    126.5,
    -0.49,
    0.49,
    ...range(22, (j) => j),
  ]);
  const out = new Uint8Array(34);
  quantizeQ8_0(x, out);
  assert.deepEqual([out[0], out[1]], [0x00, 0x3c]); // d = 1
  const q = new Int8Array(out.buffer, 2, 32);
  assert.deepEqual([...q.subarray(0, 10)], [-127, -3, -2, -1, 1, 2, 3, 127, 0, 0]);
  const back = new Float32Array(32);
  dequantizeQ8_0(out, back);
  assert.deepEqual([...back], [...q]);
});

Deno.test("iq4_nl: the table values come back exactly (scale 1 found by the search)", () => {
  const x = f32(range(32, (j) => KVALUES_IQ4NL[j % 16]));
  const out = new Uint8Array(18);
  quantizeIQ4_NL(x, out);
  assert.deepEqual([out[0], out[1]], [0x00, 0x3c]);
  assert.deepEqual([...out.subarray(2)], range(16, (j) => j | (j << 4)));
  const back = new Float32Array(32);
  dequantizeIQ4_NL(out, back);
  assert.deepEqual([...back], [...x]);
  // an all-zero block: d = 0 and the level nearest 0 (index 8)
  quantizeIQ4_NL(new Float32Array(32), out);
  assert.deepEqual([...out], [0, 0, ...Array(16).fill(0x88)]);
});

Deno.test("iq4_xs: super-scale -max/32, 6-bit sub-scales split into scales_l / scales_h", () => {
  const x = f32(range(256, (j) => KVALUES_IQ4NL[j % 16] * (j < 128 ? 1 : 0.5)));
  const out = new Uint8Array(136);
  quantizeIQ4_XS(x, out);
  // d = -1/32: sub-blocks 0..3 get l = -32 (scale 1), 4..7 l = -16 (scale 0.5); stored l + 32
  assert.deepEqual([out[0], out[1]], [0x00, 0xa8]);
  assert.deepEqual([out[2], out[3]], [0x00, 0x55]); // high 2 bits of 0,0,0,0,16,16,16,16
  assert.deepEqual([...out.subarray(4, 8)], [0x00, 0x00, 0x00, 0x00]);
  for (let ib = 0; ib < 8; ib++) {
    assert.deepEqual([...out.subarray(8 + 16 * ib, 24 + 16 * ib)], range(16, (j) => j | (j << 4)));
  }
  const back = new Float32Array(256);
  dequantizeIQ4_XS(out, back);
  assert.deepEqual([...back], [...x]);
  // all zero: d = -0 (C's -max_scale/32 with max_scale 0), every l = 0 stored as 32
  quantizeIQ4_XS(new Float32Array(256), out);
  assert.deepEqual([...out.subarray(0, 8)], [0x00, 0x80, 0xaa, 0xaa, 0, 0, 0, 0]);
});

Deno.test("fp16: round to nearest even, subnormals kept, overflow to inf, NaN 0x7e00", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [NaN, 0x7e00],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie to even
    [3 * 2 ** -25, 0x0002], // 1.5 ulp -> 2
    [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00], // tie to even
    [1 + 3 * 2 ** -11, 0x3c02],
    [1e-10, 0x0000],
    [-0, 0x8000],
  ];
  const got = f32ArrayToF16(f32(cases.map((c) => c[0])));
  assert.deepEqual([...got].map((h) => h.toString(16)), cases.map((c) => c[1].toString(16)));
  assert.equal(f32BitsToF16(0xffc00000), 0xfe00); // negative NaN keeps its sign
  const back = f16ArrayToF32(new Uint16Array([0x3c00, 0x0001, 0xfc00, 0x7bff]));
  assert.deepEqual([...back], [1, 2 ** -24, -Infinity, 65504]);
});

Deno.test("bf16: round to nearest even, NaN made quiet", () => {
  const u = new Uint32Array([
    0x3f800000,
    0x3f808000,
    0x3f818000,
    0x3f808001,
    0x7f800001,
    0xff800000,
  ]);
  const got = f32ArrayToBf16(new Float32Array(u.buffer));
  assert.deepEqual([...got], [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x7fc0, 0xff80]);
  assert.deepEqual([...bf16ArrayToF32(new Uint16Array([0x3f80, 0xc000]))], [1, -2]);
});

Deno.test("fp16 / bf16 byte kernels work on unaligned buffers", () => {
  const x = f32(range(33, (j) => (j - 16) * 0.37));
  for (const [q, dq] of [[quantizeF16, dequantizeF16], [quantizeBF16, dequantizeBF16]] as const) {
    const aligned = new Uint8Array(66);
    q(x, aligned);
    const odd = new Uint8Array(67);
    q(x, odd.subarray(1));
    assert.deepEqual(odd.subarray(1), aligned);
    const a = new Float32Array(33), b = new Float32Array(33);
    dq(aligned, a);
    dq(odd.subarray(1), b);
    assert.deepEqual(b, a);
  }
});

Deno.test("block kernels refuse partial blocks and short buffers", () => {
  const kinds = [
    [quantizeQ4_0, dequantizeQ4_0, 32, 18],
    [quantizeQ4_1, dequantizeQ4_1, 32, 20],
    [quantizeQ5_0, dequantizeQ5_0, 32, 22],
    [quantizeQ5_1, dequantizeQ5_1, 32, 24],
    [quantizeQ8_0, dequantizeQ8_0, 32, 34],
    [quantizeIQ4_NL, dequantizeIQ4_NL, 32, 18],
    [quantizeIQ4_XS, dequantizeIQ4_XS, 256, 136],
  ] as const;
  for (const [q, dq, qk, size] of kinds) {
    assert.throws(() => q(new Float32Array(qk + 1), new Uint8Array(2 * size)), RangeError);
    assert.throws(() => q(new Float32Array(qk), new Uint8Array(size - 1)), RangeError);
    assert.throws(() => dq(new Uint8Array(size), new Float32Array(qk - 1)), RangeError);
    assert.throws(() => dq(new Uint8Array(size - 1), new Float32Array(qk)), RangeError);
  }
  assert.throws(() => quantizeF16(new Float32Array(4), new Uint8Array(7)), RangeError);
  assert.throws(() => dequantizeBF16(new Uint8Array(7), new Float32Array(4)), RangeError);
});
