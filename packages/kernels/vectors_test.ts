/**
 * The golden vectors in ../shared/vectors/ggml (made by libggml's `ggml_quantize_chunk` and
 * gguf-py's dequantizer): for all 14 types, quantize() gives the expected bytes and dequantize()
 * of those bytes gives the expected float32 values, bit for bit.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dequantize, quantize } from "./quantize.ts";
import { QUANT_TYPES, rowSize } from "./types.ts";

const DIR = new URL("../../../shared/vectors/ggml/", import.meta.url);
const TYPES = QUANT_TYPES.filter((t) => t !== "f32");

interface VectorSet {
  input: string;
  rows: number;
  cols: number;
  quantized: Record<string, { file: string; sha256: string }>;
  dequantized: Record<string, { file: string }>;
}

async function read(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(new URL(name, DIR)));
}

function floats(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.slice().buffer);
}

/** Index of the first value whose float32 bits differ (any NaN matches any NaN), or -1. */
function firstFloatDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  }
  return -1;
}

function firstByteDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const manifest: { sets: VectorSet[] } = JSON.parse(
  new TextDecoder().decode(await read("manifest.json")),
);

Deno.test("vectors: the manifest has a set with all 14 types", () => {
  assert.ok(manifest.sets.length >= 1);
  for (const set of manifest.sets) {
    for (const t of TYPES) {
      assert.ok(set.quantized[t], `${set.input}: no ${t}`);
      assert.ok(set.dequantized[t], `${set.input}: no ${t} dequantized`);
    }
  }
});

for (const set of manifest.sets) {
  for (const type of TYPES) {
    Deno.test(`vectors ${set.input}: ${type} quantize and dequantize are exact`, async () => {
      const x = floats(await read(set.input));
      assert.equal(x.length, set.rows * set.cols);
      const expected = await read(set.quantized[type].file);
      assert.equal(
        createHash("sha256").update(expected).digest("hex"),
        set.quantized[type].sha256,
        `${set.quantized[type].file}: checksum`,
      );
      assert.equal(expected.length, rowSize(type, set.cols) * set.rows);

      const got = quantize(type, x);
      const at = firstByteDiff(got, expected);
      assert.equal(at, -1, `${type}: byte ${at} is ${got[at]}, expected ${expected[at]}`);

      const want = floats(await read(set.dequantized[type].file));
      const back = dequantize(type, expected, x.length);
      const bt = firstFloatDiff(back, want);
      assert.equal(bt, -1, `${type}: value ${bt} is ${back[bt]}, expected ${want[bt]}`);
    });
  }
}
