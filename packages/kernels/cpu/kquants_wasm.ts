/**
 * WebAssembly fast path of the Q4_K and Q6_K quantizers (kquants_wasm.c, compiled by
 * tools/build_wasm.ts). Byte-identical to the JS reference quantizers; used by
 * {@link quantizeQ4_K} / {@link quantizeQ6_K} when the runtime has WebAssembly with SIMD128, which
 * fall back to the JS code otherwise.
 * @module
 */
import { KQUANTS_WASM_BASE64 } from "./kquants_wasm_bin.ts";

interface Exports {
  memory: WebAssembly.Memory;
  kq_src_ptr(): number;
  kq_dst_ptr(): number;
  kq_chunk(): number;
  kq_quantize_q4_k(nb: number): void;
  kq_quantize_q6_k(nb: number): void;
}

let state: Exports | null | undefined; // undefined: not loaded yet; null: unavailable
let enabled = true;

function load(): Exports | null {
  try {
    if (typeof WebAssembly !== "object" || typeof atob !== "function") return null;
    const bin = atob(KQUANTS_WASM_BASE64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    if (!WebAssembly.validate(bytes)) return null; // e.g. no SIMD128
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    return instance.exports as unknown as Exports;
  } catch {
    return null;
  }
}

function wasm(): Exports | null {
  if (!enabled) return null;
  if (state === undefined) state = load();
  return state;
}

/**
 * Turns the WebAssembly fast path on or off (on by default; for tests and benchmarks of the JS
 * reference). Returns whether it is available and on.
 */
export function setKQuantsWasm(on: boolean): boolean {
  enabled = on;
  return wasm() !== null;
}

/** Whether the WebAssembly fast path is available and on. */
export function kquantsWasmAvailable(): boolean {
  return wasm() !== null;
}

function run(
  which: "kq_quantize_q4_k" | "kq_quantize_q6_k",
  typeSize: number,
  src: Float32Array,
  dst: Uint8Array,
  nb: number,
): boolean {
  const w = wasm();
  if (w === null) return false;
  const chunk = w.kq_chunk();
  const fn = w[which];
  const mem = w.memory.buffer;
  const heapF = new Float32Array(mem, w.kq_src_ptr(), chunk * 256);
  const heapU = new Uint8Array(mem, w.kq_dst_ptr(), chunk * typeSize);
  for (let b = 0; b < nb; b += chunk) {
    const n = Math.min(chunk, nb - b);
    heapF.set(src.subarray(b * 256, (b + n) * 256));
    fn(n);
    dst.set(n === chunk ? heapU : heapU.subarray(0, n * typeSize), b * typeSize);
  }
  return true;
}

/**
 * Quantizes `nb` Q4_K super-blocks of `src` into `dst` (144 bytes each) with WebAssembly;
 * false (and nothing written) when the fast path is unavailable.
 */
export function wasmQuantizeQ4_K(src: Float32Array, dst: Uint8Array, nb: number): boolean {
  return run("kq_quantize_q4_k", 144, src, dst, nb);
}

/**
 * Quantizes `nb` Q6_K super-blocks of `src` into `dst` (210 bytes each) with WebAssembly;
 * false (and nothing written) when the fast path is unavailable.
 */
export function wasmQuantizeQ6_K(src: Float32Array, dst: Uint8Array, nb: number): boolean {
  return run("kq_quantize_q6_k", 210, src, dst, nb);
}
