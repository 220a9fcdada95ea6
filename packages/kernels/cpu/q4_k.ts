/**
 * Q4_K: 256-element super-blocks of 8 sub-blocks of 32, 4-bit levels with a 6-bit scale and min per
 * sub-block (144 bytes: d, dmin, 12 scale bytes, 128 nibble bytes). Bit-identical to libggml's
 * `quantize_row_q4_K_ref` / `dequantize_row_q4_K`.
 * @module
 */
import { FP16_TABLE } from "./half.ts";
import { checkKQuantArgs, getScaleMinK4, QK_K, quantizeScaleMinBlock } from "./kquant_common.ts";
import { wasmQuantizeQ4_K } from "./kquants_wasm.ts";

const fr = Math.fround;
const TYPE_SIZE = 144;

const L = new Uint8Array(QK_K);

/**
 * Quantize `src` (a multiple of 256 values) to Q4_K blocks in `dst` (144 bytes per block), with
 * the WebAssembly fast path when available (same bytes as {@link quantizeQ4_KRef}).
 */
export function quantizeQ4_K(src: Float32Array, dst: Uint8Array): void {
  const nb = checkKQuantArgs("quantizeQ4_K", src.length, dst.length, TYPE_SIZE, true);
  if (!wasmQuantizeQ4_K(src, dst, nb)) quantizeBlocks(src, dst, nb);
}

/** The JS reference of {@link quantizeQ4_K}, used where WebAssembly (with SIMD128) is unavailable. */
export function quantizeQ4_KRef(src: Float32Array, dst: Uint8Array): void {
  quantizeBlocks(
    src,
    dst,
    checkKQuantArgs("quantizeQ4_K", src.length, dst.length, TYPE_SIZE, true),
  );
}

function quantizeBlocks(src: Float32Array, dst: Uint8Array, nb: number): void {
  for (let i = 0; i < nb; i++) {
    const yb = i * TYPE_SIZE;
    quantizeScaleMinBlock(src, i * QK_K, dst, yb, 15, -1, 20, L);
    let q = yb + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) dst[q + l] = L[j + l] | (L[j + l + 32] << 4);
      q += 32;
    }
  }
}

/** Dequantize Q4_K blocks in `src` into `dst` (a multiple of 256 values). */
export function dequantizeQ4_K(src: Uint8Array, dst: Float32Array): void {
  const nb = checkKQuantArgs("dequantizeQ4_K", dst.length, src.length, TYPE_SIZE, false);
  for (let i = 0; i < nb; i++) {
    const b = i * TYPE_SIZE;
    const d = FP16_TABLE[src[b] | (src[b + 1] << 8)];
    const min = FP16_TABLE[src[b + 2] | (src[b + 3] << 8)];
    let q = b + 16, y = i * QK_K;
    for (let is = 0; is < 8; is += 2) {
      const s1 = getScaleMinK4(is, src, b + 4), s2 = getScaleMinK4(is + 1, src, b + 4);
      const d1 = fr(d * (s1 & 255)), m1 = fr(min * (s1 >> 8));
      const d2 = fr(d * (s2 & 255)), m2 = fr(min * (s2 >> 8));
      for (let l = 0; l < 32; l++) dst[y + l] = fr(d1 * (src[q + l] & 0xf)) - m1;
      for (let l = 0; l < 32; l++) dst[y + 32 + l] = fr(d2 * (src[q + l] >> 4)) - m2;
      q += 32;
      y += 64;
    }
  }
}
