/**
 * The WebAssembly fast path of Q4_K / Q6_K against the JS reference quantizers: identical bytes
 * on random inputs of many scales, including zeros, ties, subnormals, overflow, NaN and
 * infinities. (libggml_test.ts and kquants_test.ts check the public quantizers, which take the
 * fast path, against libggml itself.)
 */
import assert from "node:assert/strict";
import { gaussian, rng } from "../../../tests/support/random.ts";
import { kquantsWasmAvailable, setKQuantsWasm } from "./kquants_wasm.ts";
import { quantizeQ4_K, quantizeQ4_KRef } from "./q4_k.ts";
import { quantizeQ6_K, quantizeQ6_KRef } from "./q6_k.ts";

type Quantize = (src: Float32Array, dst: Uint8Array) => void;

const KINDS: [string, number, Quantize, Quantize][] = [
  ["q4_k", 144, quantizeQ4_K, quantizeQ4_KRef],
  ["q6_k", 210, quantizeQ6_K, quantizeQ6_KRef],
];

/** Named generators of n float32 values. */
const CASES: [string, (n: number, s: number) => Float32Array][] = [
  ["gaussian", (n, s) => gaussian(n, s, 0.02 * 10 ** ((s % 7) - 3))],
  ["all positive", (n, s) => gaussian(n, s, 1).map(Math.abs)],
  ["all negative", (n, s) => gaussian(n, s, 1).map((v) => -Math.abs(v) - 0.5)],
  ["sparse", (n, s) => {
    const r = rng(s);
    return gaussian(n, s, 1).map((v) => (r() < 0.85 ? 0 : v));
  }],
  ["small integers (ties)", (n, s) => {
    const r = rng(s);
    return new Float32Array(n).map(() => Math.floor(r() * 17) - 8);
  }],
  ["outliers", (n, s) => {
    const x = gaussian(n, s, 0.02), r = rng(s + 1);
    for (let i = 0; i < n; i++) if (r() < 0.01) x[i] = (r() - 0.5) * 40;
    return x;
  }],
  ["mixed scales per 16", (n, s) => {
    const x = gaussian(n, s, 1), r = rng(s + 2);
    for (let b = 0; b < n; b += 16) {
      const k = 10 ** (r() * 80 - 45);
      for (let i = b; i < b + 16; i++) x[i] *= k;
    }
    return x;
  }],
  ["huge 1e37", (n, s) => gaussian(n, s, 1e37)],
  ["±3e38 (range overflow)", (n, s) => gaussian(n, s, 1).map((v) => (v < 0 ? -3e38 : 3e38))],
  ["subnormal", (n, s) => gaussian(n, s, 1e-41)],
  ["NaN and infinities", (n, s) => {
    const x = gaussian(n, s, 1), r = rng(s + 3);
    for (let i = 0; i < n; i++) {
      const u = r();
      if (u < 0.01) x[i] = NaN;
      else if (u < 0.02) x[i] = u < 0.015 ? Infinity : -Infinity;
    }
    return x;
  }],
  ["random bit patterns (canonical NaN)", (n, s) => {
    const r = rng(s), u = new Uint32Array(n);
    for (let i = 0; i < n; i++) u[i] = Math.floor(r() * 2 ** 32);
    const x = new Float32Array(u.buffer);
    return x.map((v) => (Number.isNaN(v) ? NaN : v));
  }],
];

Deno.test("kquants wasm: the fast path is available in Deno", () => {
  assert.equal(kquantsWasmAvailable(), true);
});

for (const [type, size, fast, ref] of KINDS) {
  Deno.test(`${type}: WebAssembly fast path equals the JS reference`, () => {
    let blocks = 0;
    for (const [label, make] of CASES) {
      for (let seed = 1; seed <= 4; seed++) {
        // 70 blocks: more than one 64-block chunk of the wasm side, with a partial one
        const nb = seed === 1 ? 70 : 3;
        const x = make(nb * 256, seed * 131 + label.length);
        const got = new Uint8Array(nb * size).fill(0xee), want = new Uint8Array(nb * size);
        fast(x, got);
        ref(x, want);
        let at = -1;
        for (let i = 0; i < got.length && at < 0; i++) if (got[i] !== want[i]) at = i;
        assert.equal(at, -1, `${type} ${label} seed ${seed}: byte ${at}`);
        blocks += nb;
      }
    }
    assert.equal(blocks, CASES.length * 79);
  });

  Deno.test(`${type}: with the fast path off, the JS reference runs`, () => {
    const x = gaussian(512, 3, 1);
    const a = new Uint8Array(2 * size), b = new Uint8Array(2 * size);
    fast(x, a);
    assert.equal(setKQuantsWasm(false), false);
    try {
      fast(x, b);
    } finally {
      setKQuantsWasm(true);
    }
    assert.deepEqual(a, b);
    assert.throws(() => fast(new Float32Array(100), new Uint8Array(size)), /multiple/);
    assert.throws(() => fast(new Float32Array(512), new Uint8Array(size)), /destination/);
  });
}
