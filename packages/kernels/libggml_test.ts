/**
 * QuantX's CPU kernels against libggml itself (loaded through Deno.dlopen, see
 * tests/support/libggml.ts): the type registry against `ggml_blck_size` / `ggml_type_size` /
 * `ggml_type_name` for every id, and for all 14 types quantize() bytes == `ggml_quantize_chunk`
 * bytes and dequantize() values == libggml's row dequantizer, on random inputs of many shapes,
 * seeds and scales (zeros, tiny, subnormal, huge, ties, NaN and infinities).
 */
import assert from "node:assert/strict";
import { ggmlDequantize, ggmlQuantize, libggml } from "../../tests/support/libggml.ts";
import { gaussian, rng } from "../../tests/support/random.ts";
import { dequantize, quantize, quantizeInto } from "./quantize.ts";
import { GGML_TYPES, ggmlType, QUANT_TYPES, rowSize } from "./types.ts";

const TYPES = QUANT_TYPES.filter((t) => t !== "f32");

/** Named generators of `n` float32 values. */
const CASES: [string, (n: number, seed: number) => Float32Array][] = [
  ["gaussian std 0.02", (n, s) => gaussian(n, s, 0.02)],
  ["gaussian std 1", (n, s) => gaussian(n, s, 1)],
  ["gaussian std 1e-3 mean 0.01", (n, s) => gaussian(n, s, 1e-3, 0.01)],
  ["gaussian std 300", (n, s) => gaussian(n, s, 300)],
  ["student t (3 dof)", (n, s) => {
    const g = gaussian(n, s, 1), h = gaussian(3 * n, s + 500, 1);
    return g.map((v, i) =>
      v / Math.sqrt((h[3 * i] ** 2 + h[3 * i + 1] ** 2 + h[3 * i + 2] ** 2) / 3)
    );
  }],
  ["rare outliers", (n, s) => {
    const x = gaussian(n, s, 0.02), r = rng(s);
    for (let i = 0; i < n; i++) if (r() < 0.004) x[i] = (r() - 0.5) * 40;
    return x;
  }],
  ["sparse", (n, s) => {
    const x = gaussian(n, s, 1), r = rng(s + 7);
    return x.map((v) => (r() < 0.9 ? 0 : v));
  }],
  ["all positive", (n, s) => gaussian(n, s, 1).map(Math.abs)],
  ["all negative", (n, s) => gaussian(n, s, 1).map((v) => -Math.abs(v) - 0.5)],
  ["small integers (ties)", (n, s) => {
    const r = rng(s);
    return new Float32Array(n).map(() => Math.floor(r() * 17) - 8);
  }],
  ["half integers (ties)", (n, s) => {
    const r = rng(s);
    return new Float32Array(n).map(() => (Math.floor(r() * 32) - 16) / 2);
  }],
  ["tiny 1e-6", (n, s) => gaussian(n, s, 1e-6)],
  ["tiny 1e-20", (n, s) => gaussian(n, s, 1e-20)],
  ["below GROUP_MAX_EPS 1e-16", (n, s) => gaussian(n, s, 1e-16)],
  ["near the float32 normal limit 1e-37", (n, s) => gaussian(n, s, 1e-37)],
  ["subnormal 1e-40", (n, s) => gaussian(n, s, 1e-40)],
  ["deep subnormal 1e-44", (n, s) => gaussian(n, s, 1e-44)],
  ["large 1e5 (fp16 overflow)", (n, s) => gaussian(n, s, 1e5)],
  ["huge 1e20", (n, s) => gaussian(n, s, 1e20)],
  ["huge 1e37 (float32 overflow in C's arithmetic)", (n, s) => gaussian(n, s, 1e37)],
  ["mixed block scales", (n, s) => {
    const x = gaussian(n, s, 1), r = rng(s + 3);
    for (let b = 0; b < n; b += 16) {
      const k = 10 ** (r() * 60 - 40);
      for (let i = b; i < b + 16; i++) x[i] *= k;
    }
    return x;
  }],
  ["NaN and infinities", (n, s) => {
    const x = gaussian(n, s, 1), r = rng(s + 11);
    for (let i = 0; i < n; i++) {
      const u = r();
      if (u < 0.003) x[i] = NaN;
      else if (u < 0.006) x[i] = u < 0.0045 ? Infinity : -Infinity;
    }
    return x;
  }],
  ["constant blocks", (n, s) => {
    const x = new Float32Array(n), r = rng(s);
    for (let b = 0; b < n; b += 32) x.fill(r() < 0.2 ? 0 : (r() - 0.5) * 10, b, b + 32);
    return x;
  }],
  ["zeros", (n) => new Float32Array(n)],
  ["negative zeros and one value", (n, s) => {
    const x = new Float32Array(n).fill(-0), r = rng(s);
    for (let b = 0; b < n; b += 32) x[b + Math.floor(r() * 32)] = r() - 0.5;
    return x;
  }],
  ["mixed signed zeros", (n, s) => {
    const r = rng(s);
    return new Float32Array(n).map(() => (r() < 0.5 ? -0 : r() < 0.5 ? 0 : r() - 0.5));
  }],
  ["bf16-exact values", (n, s) => {
    const x = gaussian(n, s, 1), u = new Uint32Array(x.buffer);
    for (let i = 0; i < n; i++) u[i] &= 0xffff0000;
    return x;
  }],
  ["random bit patterns (NaNs made 0x7fc00000)", (n, s) => randomBits(n, s, true)],
];

/**
 * `n` random float32 bit patterns: every exponent, infinities, subnormals and NaNs. With
 * `canonical`, NaNs are the default quiet NaN: the k-quant kernels do not follow the payload of
 * other NaNs through C's `nearest_int` (it reads a NaN's payload bits as an integer, something
 * its assert rules out), which the other kernels match even then.
 */
function randomBits(n: number, seed: number, canonical: boolean): Float32Array {
  const r = rng(seed), u = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    u[i] = Math.floor(r() * 2 ** 32);
    if (canonical && (u[i] & 0x7fffffff) > 0x7f800000) u[i] = 0x7fc00000;
  }
  return new Float32Array(u.buffer);
}

function firstByteDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** First index whose float32 bits differ; with `anyNaN`, any NaN matches any NaN. */
function firstFloatDiff(a: Float32Array, b: Float32Array, anyNaN: boolean): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(anyNaN && Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  }
  return -1;
}

function typeName(id: number): string {
  const p = libggml().symbols.ggml_type_name(id);
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

Deno.test("registry: every ggml type id 0..42 matches libggml's type traits", () => {
  const { symbols } = libggml();
  const ids = GGML_TYPES.map((t) => t.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "ascending ids");
  for (let id = 0; id <= 42; id++) {
    const blck = Number(symbols.ggml_blck_size(id));
    const size = Number(symbols.ggml_type_size(id));
    const name = typeName(id);
    const ours = GGML_TYPES.find((t) => t.id === id);
    if (blck === 0) {
      // a removed id (4, 5, 31..33, 36..38)
      assert.equal(ours, undefined, `id ${id} (${name}) is not a ggml type any more`);
      continue;
    }
    assert.ok(ours, `id ${id} (${name}) is missing`);
    assert.equal(ours.name, name.toLowerCase(), `id ${id} name`);
    assert.equal(ours.blockSize, blck, `${name} block size`);
    assert.equal(ours.typeSize, size, `${name} type size`);
    assert.equal(ggmlType(name).id, id);
    for (const n of [blck, 7 * blck, 4096 * blck]) {
      assert.equal(
        rowSize(id, n),
        Number(symbols.ggml_row_size(id, BigInt(n))),
        `${name} row size`,
      );
    }
  }
  assert.equal(Math.max(...ids), 42);
});

for (const type of TYPES) {
  const t = ggmlType(type);
  const block = Math.max(32, t.blockSize);
  const floatType = type === "f16" || type === "bf16";

  Deno.test(`${type}: quantize equals ggml_quantize_chunk on random inputs`, () => {
    // rows x cols shapes: one block, odd block counts, a real-model row length
    const shapes: [number, number][] = [[1, block], [3, 3 * block], [2, 7 * block], [2, 4096]];
    let checked = 0;
    for (const [label, make] of CASES) {
      for (const seed of [1, 2, 3, 4, 5]) {
        const [rows, cols] = shapes[(seed + label.length) % shapes.length];
        const x = make(rows * cols, seed * 7919 + label.length);
        const expected = ggmlQuantize(type, x, rows);
        const got = quantize(type, x);
        const at = firstByteDiff(got, expected);
        assert.equal(
          at,
          -1,
          `${type} ${label} seed ${seed} (${rows}x${cols}): byte ${at} (block ${
            Math.floor(at / t.typeSize)
          }, offset ${at % t.typeSize}) is ${got[at]}, libggml wrote ${expected[at]}`,
        );
        checked++;
      }
    }
    // many seeds and scales of the common case
    for (let seed = 100; seed < 110; seed++) {
      const x = gaussian(8 * 256, seed, 0.02 * 10 ** ((seed % 5) - 2));
      assert.deepEqual(quantize(type, x), ggmlQuantize(type, x, 2), `${type} seed ${seed}`);
      checked++;
    }
    assert.equal(checked, CASES.length * 5 + 10);
    if (!type.endsWith("_k")) {
      // NaNs with any payload, many seeds
      for (let seed = 0; seed < 40; seed++) {
        const x = randomBits(2 * block, seed, false);
        assert.deepEqual(
          quantize(type, x),
          ggmlQuantize(type, x, 1),
          `${type} NaN payloads ${seed}`,
        );
      }
    }
  });

  Deno.test(`${type}: dequantize equals libggml bit for bit`, () => {
    const r = rng(42);
    const x = gaussian(16 * block, 5, 0.5);
    const nb = (16 * block) / t.blockSize;
    const inputs = [
      ggmlQuantize(type, x, 1),
      // arbitrary bytes: any scale, fp16 infinities and NaN included
      new Uint8Array(nb * t.typeSize).map(() => Math.floor(r() * 256)),
    ];
    if (floatType) {
      // every 16-bit pattern
      inputs.push(new Uint8Array(new Uint16Array(65536).map((_, i) => i).buffer));
    }
    for (const bytes of inputs) {
      const n = (bytes.length / t.typeSize) * t.blockSize;
      const expected = ggmlDequantize(type, bytes, n);
      const got = dequantize(type, bytes, n);
      // f16 / bf16 widen exactly, NaN payloads included; elsewhere a NaN scale gives some NaN
      const at = firstFloatDiff(got, expected, !floatType);
      assert.equal(at, -1, `${type}: value ${at} is ${got[at]}, libggml gave ${expected[at]}`);
    }
  });
}

Deno.test("quantizeInto writes into a larger, offset buffer like quantize", () => {
  const x = gaussian(512, 9, 1);
  for (const type of TYPES) {
    const want = ggmlQuantize(type, x, 1);
    const buf = new Uint8Array(want.length + 5).fill(0xee);
    quantizeInto(type, x, buf.subarray(3));
    assert.deepEqual(buf.subarray(3, 3 + want.length), want, type);
    assert.deepEqual([...buf.subarray(0, 3), ...buf.subarray(3 + want.length)], [
      0xee,
      0xee,
      0xee,
      0xee,
      0xee,
    ]);
  }
});
