/**
 * Shared helpers for the WebGPU kernel tests and bench: the ../shared/vectors set, seeded test
 * inputs (shapes, scales, rounding edge cases), an independent NF4 reference, and comparisons.
 * Test-only: nothing in the library imports it.
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { WebGpuKernelsOptions } from "./mod.ts";
import { NF4_MIDPOINTS_F32 } from "./shaders/nf4.ts";
import { gaussian, rng } from "../../../tests/support/random.ts";

const fr = Math.fround;

/** Directory of the golden ggml vectors (`../shared/vectors/ggml` beside the checkout). */
export const VECTORS_DIR: string = join(
  new URL("../../..", import.meta.url).pathname,
  "../shared/vectors/ggml",
);

/** One vector set: the float input and a reader for its companion files. */
export interface VectorSet {
  rows: number;
  cols: number;
  input: Float32Array;
  /** Reads `quantized[type].file` (or the NF4 entry's `file` / `absmax`). */
  quantized(type: string, key?: "file" | "absmax"): Promise<Uint8Array>;
  /** Reads `dequantized[type].file` as float32. */
  dequantized(type: string): Promise<Float32Array>;
}

interface ManifestSet {
  input: string;
  rows: number;
  cols: number;
  quantized: Record<string, { file: string; absmax?: string }>;
  dequantized: Record<string, { file: string }>;
}

async function readBytes(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(VECTORS_DIR, name)));
}

async function readF32(name: string): Promise<Float32Array> {
  const b = await readBytes(name);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** Every set listed in `manifest.json`. */
export async function vectorSets(): Promise<VectorSet[]> {
  const manifest = JSON.parse(await readFile(join(VECTORS_DIR, "manifest.json"), "utf8")) as {
    sets: ManifestSet[];
  };
  return Promise.all(manifest.sets.map(async (s) => ({
    rows: s.rows,
    cols: s.cols,
    input: await readF32(s.input),
    quantized: (type: string, key: "file" | "absmax" = "file") => {
      const e = s.quantized[type];
      const f = e?.[key];
      if (!f) throw new Error(`vectors: no quantized ${type} ${key}`);
      return readBytes(f);
    },
    dequantized: (type: string) => {
      const e = s.dequantized[type];
      if (!e) throw new Error(`vectors: no dequantized ${type}`);
      return readF32(e.file);
    },
  })));
}

function nudge(x: number, ulps: number): number {
  const f = new Float32Array([x]);
  const u = new Int32Array(f.buffer);
  u[0] += ulps;
  return f[0];
}

/**
 * `blocks` blocks of 32 values built to sit on rounding edges: for q4_0, `x*id + 8.5` within a
 * few ulps of an integer (where rounding the product first, or not, changes the code); for q8_0,
 * `x*id` within a few ulps of a half-integer; ties for the largest |x| (first one wins) and
 * exact half-integers.
 */
export function edgeBlocks(blocks: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(blocks * 32);
  for (let b = 0; b < blocks; b++) {
    const o = b * 32, kind = b % 4;
    const max = fr((0.5 + r() * 10) * (r() < 0.5 ? -1 : 1) * 2 ** Math.floor(r() * 20 - 10));
    out[o] = max;
    if (kind === 0) {
      const id = fr(1 / fr(max / -8));
      for (let j = 1; j < 32; j++) {
        const k = 1 + Math.floor(r() * 15);
        const x = nudge(fr((k - 8.5) / id), Math.floor(r() * 7) - 3);
        out[o + j] = Math.abs(x) <= Math.abs(max) ? x : 0;
      }
    } else if (kind === 1) {
      const amax = Math.abs(max), id = fr(1 / fr(amax / 127));
      for (let j = 1; j < 32; j++) {
        const k = Math.floor(r() * 254) - 127 + 0.5;
        const x = nudge(fr(k / id), Math.floor(r() * 5) - 2);
        out[o + j] = Math.abs(x) <= amax ? x : 0;
      }
    } else if (kind === 2) {
      // several elements share the largest |x| with both signs
      for (let j = 1; j < 32; j++) {
        out[o + j] = r() < 0.3 ? (r() < 0.5 ? -max : max) : fr(max * (r() * 2 - 1));
      }
    } else {
      for (let j = 1; j < 32; j++) out[o + j] = (Math.floor(r() * 33) - 16) / 2;
      out[o] = 8 * (r() < 0.5 ? -1 : 1);
    }
  }
  return out;
}

/** Inputs of several shapes, seeds and scales (plus edge blocks), lengths multiples of 256. */
export function randomInputs(): { name: string; data: Float32Array }[] {
  const scaled = (n: number, seed: number, std: number) => ({
    name: `normal n=${n} seed=${seed} std=${std}`,
    data: gaussian(n, seed, std),
  });
  const mixed = gaussian(32 * 256, 7, 1).map((v, i) => v * 10 ** ((i >> 5) % 12 - 6));
  return [
    scaled(256, 1, 1),
    scaled(32 * 256, 2, 0.02),
    scaled(4096 * 9, 3, 1),
    scaled(256 * 5, 4, 1e-20),
    scaled(256 * 7, 5, 3e4),
    { name: "scales 1e-6..1e5 per block", data: mixed },
    { name: "edge blocks", data: edgeBlocks(8 * 256, 11) },
  ];
}

/** Independent NF4 reference (bitsandbytes semantics), for random inputs. */
export function nf4Reference(src: Float32Array, blockSize: number): {
  codes: Uint8Array;
  absmax: Float32Array;
} {
  const n = src.length, nb = Math.ceil(n / blockSize);
  const absmax = new Float32Array(nb), inv = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let m = 0;
    for (let i = b * blockSize; i < Math.min(n, (b + 1) * blockSize); i++) {
      m = Math.max(m, Math.abs(src[i]));
    }
    absmax[b] = m;
    inv[b] = fr(1 / m);
  }
  const code = (e: number) => {
    const b = Math.min(Math.floor(e / blockSize), nb - 1);
    if (absmax[b] === 0) return 0;
    const s = fr((e < n ? src[e] : 0) * inv[b]);
    let c = 0;
    for (const m of NF4_MIDPOINTS_F32) if (m < s) c++;
    return c;
  };
  const codes = new Uint8Array(Math.ceil(n / 2));
  for (let i = 0; i < codes.length; i++) codes[i] = (code(2 * i) << 4) | code(2 * i + 1);
  return { codes, absmax };
}

/** Index of the first differing element (bitwise for floats), or -1. */
export function firstDiff(a: ArrayBufferView, b: ArrayBufferView): number {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength);
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** A description of the first byte difference, for assertion messages. */
export function diffMessage(what: string, a: ArrayBufferView, b: ArrayBufferView): string {
  const i = firstDiff(a, b);
  return `${what}: lengths ${a.byteLength}/${b.byteLength}, first differing byte ${i}`;
}

/** Options that force several chunks and 2D dispatches even on small inputs. */
export const TINY_CHUNKS: WebGpuKernelsOptions = {
  chunkBytes: 4096,
  maxWorkgroupsPerDimension: 16,
};
