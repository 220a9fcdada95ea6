/**
 * IQ4_XS: 256-element super-blocks of 8 sub-blocks of 32, 4-bit indices into `KVALUES_IQ4NL` with
 * a 6-bit signed scale per sub-block and one fp16 super-scale (136 bytes: d, scales_h (u16, 2 bits
 * per sub-block), scales_l (4 bytes, 4 bits per sub-block), 128 nibble bytes, each sub-block's
 * first 16 values in the low nibbles).
 *
 * Quantization is what libggml's `ggml_quantize_chunk` does without an importance matrix
 * (`quantize_iq4_xs`: `quantize_row_iq4_nl_impl` with ntry = 7); dequantization is
 * `dequantize_row_iq4_xs`. Both bit-identical.
 * @module
 */
import { F16_TO_F32, f32ToF16 } from "./float.ts";
import { bestIndexIq4, iq4BlockScale, KVALUES_IQ4NL } from "./iq4_nl.ts";
import { nearestInt } from "./kquant_common.ts";
import { checkBlocks } from "./blocks.ts";

const fr = Math.fround;
const QK_K = 256;
const TYPE_SIZE = 136;

const SCALES = new Float32Array(8);

/** Quantize `src` (a multiple of 256 values) to IQ4_XS blocks in `dst` (136 bytes per block). */
export function quantizeIQ4_XS(src: Float32Array, dst: Uint8Array): void {
  const nb = checkBlocks("quantizeIQ4_XS", src.length, dst.length, QK_K, TYPE_SIZE, true);
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += QK_K, y += TYPE_SIZE) {
    let maxScale = 0, amaxScale = 0;
    for (let ib = 0; ib < 8; ib++) {
      const s = iq4BlockScale(src, x + 32 * ib);
      SCALES[ib] = s;
      const a = Math.abs(s);
      if (a > amaxScale) {
        amaxScale = a;
        maxScale = s;
      }
    }
    const d = fr(-maxScale / 32); // -0 when every scale is 0, as in C
    const h = f32ToF16(d);
    dst[y] = h;
    dst[y + 1] = h >>> 8;
    const id = d !== 0 ? fr(1 / d) : 0;
    let scalesH = 0;
    for (let ib = 0; ib < 8; ib++) {
      let l = nearestInt(fr(id * SCALES[ib]));
      l = l < -32 ? -32 : l > 31 ? 31 : l;
      const dl = fr(d * l);
      const idl = dl !== 0 ? fr(1 / dl) : 0;
      const xo = x + 32 * ib, qo = y + 8 + 16 * ib;
      for (let j = 0; j < 16; j++) {
        const l0 = bestIndexIq4(fr(idl * src[xo + j]));
        const l1 = bestIndexIq4(fr(idl * src[xo + j + 16]));
        dst[qo + j] = l0 | (l1 << 4);
      }
      l += 32;
      if ((ib & 1) === 0) dst[y + 4 + (ib >> 1)] = l & 0xf;
      else dst[y + 4 + (ib >> 1)] |= (l & 0xf) << 4;
      scalesH |= (l >> 4) << (2 * ib);
    }
    dst[y + 2] = scalesH;
    dst[y + 3] = scalesH >>> 8;
  }
}

/** Dequantize IQ4_XS blocks in `src` into `dst` (a multiple of 256 values). */
export function dequantizeIQ4_XS(src: Uint8Array, dst: Float32Array): void {
  const nb = checkBlocks("dequantizeIQ4_XS", dst.length, src.length, QK_K, TYPE_SIZE, false);
  const V = KVALUES_IQ4NL;
  for (let i = 0, x = 0, y = 0; i < nb; i++, x += TYPE_SIZE, y += QK_K) {
    const d = F16_TO_F32[src[x] | (src[x + 1] << 8)];
    const scalesH = src[x + 2] | (src[x + 3] << 8);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((src[x + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 0xf) |
        (((scalesH >> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      const qo = x + 8 + 16 * ib, yo = y + 32 * ib;
      for (let j = 0; j < 16; j++) {
        const b = src[qo + j];
        dst[yo + j] = dl * V[b & 0xf];
        dst[yo + j + 16] = dl * V[b >> 4];
      }
    }
  }
}
