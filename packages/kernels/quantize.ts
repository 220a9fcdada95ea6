/**
 * Quantize float32 values to a ggml type and back, on the CPU, byte-identical to libggml
 * (`ggml_quantize_chunk` without an importance matrix; the `dequantize_row_*` functions).
 * @module
 */
import {
  dequantizeBF16,
  dequantizeF16,
  dequantizeF32,
  quantizeBF16,
  quantizeF16,
  quantizeF32,
} from "./cpu/float.ts";
import { dequantizeIQ4_NL, quantizeIQ4_NL } from "./cpu/iq4_nl.ts";
import { dequantizeIQ4_XS, quantizeIQ4_XS } from "./cpu/iq4_xs.ts";
import { dequantizeQ2_K, quantizeQ2_K } from "./cpu/q2_k.ts";
import { dequantizeQ3_K, quantizeQ3_K } from "./cpu/q3_k.ts";
import { dequantizeQ4_0, quantizeQ4_0 } from "./cpu/q4_0.ts";
import { dequantizeQ4_1, quantizeQ4_1 } from "./cpu/q4_1.ts";
import { dequantizeQ4_K, quantizeQ4_K } from "./cpu/q4_k.ts";
import { dequantizeQ5_0, quantizeQ5_0 } from "./cpu/q5_0.ts";
import { dequantizeQ5_1, quantizeQ5_1 } from "./cpu/q5_1.ts";
import { dequantizeQ5_K, quantizeQ5_K } from "./cpu/q5_k.ts";
import { dequantizeQ6_K, quantizeQ6_K } from "./cpu/q6_k.ts";
import { dequantizeQ8_0, quantizeQ8_0 } from "./cpu/q8_0.ts";
import { type GgmlType, ggmlType, type QuantType } from "./types.ts";

/** A CPU kernel pair: float32 values to blocks and back (sizes checked by the caller). */
interface Kernel {
  q(src: Float32Array, dst: Uint8Array): void;
  dq(src: Uint8Array, dst: Float32Array): void;
}

const KERNELS: Record<QuantType, Kernel> = {
  f32: { q: quantizeF32, dq: dequantizeF32 },
  f16: { q: quantizeF16, dq: dequantizeF16 },
  bf16: { q: quantizeBF16, dq: dequantizeBF16 },
  q4_0: { q: quantizeQ4_0, dq: dequantizeQ4_0 },
  q4_1: { q: quantizeQ4_1, dq: dequantizeQ4_1 },
  q5_0: { q: quantizeQ5_0, dq: dequantizeQ5_0 },
  q5_1: { q: quantizeQ5_1, dq: dequantizeQ5_1 },
  q8_0: { q: quantizeQ8_0, dq: dequantizeQ8_0 },
  q2_k: { q: quantizeQ2_K, dq: dequantizeQ2_K },
  q3_k: { q: quantizeQ3_K, dq: dequantizeQ3_K },
  q4_k: { q: quantizeQ4_K, dq: dequantizeQ4_K },
  q5_k: { q: quantizeQ5_K, dq: dequantizeQ5_K },
  q6_k: { q: quantizeQ6_K, dq: dequantizeQ6_K },
  iq4_nl: { q: quantizeIQ4_NL, dq: dequantizeIQ4_NL },
  iq4_xs: { q: quantizeIQ4_XS, dq: dequantizeIQ4_XS },
};

function kernel(type: string | number | GgmlType, op: "quantize" | "dequantize"): {
  t: GgmlType;
  k: Kernel;
} {
  const t = ggmlType(type);
  const k = Object.hasOwn(KERNELS, t.name) ? KERNELS[t.name as QuantType] : undefined;
  if (!k) throw new TypeError(`${op}: ggml type ${t.name} (${t.id}) is not supported`);
  return { t, k };
}

function blocks(t: GgmlType, count: number, op: string): number {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`${op} ${t.name}: ${count} is not a valid number of values`);
  }
  if (count % t.blockSize !== 0) {
    throw new RangeError(
      `${op} ${t.name}: ${count} values is not a multiple of the block size ${t.blockSize}`,
    );
  }
  return count / t.blockSize;
}

/**
 * Bytes that `count` values of `type` take (whole blocks). Throws a TypeError for an unknown
 * type, a RangeError when `count` is not a multiple of its block size.
 */
export function quantizedSize(type: QuantType | string | number, count: number): number {
  const t = ggmlType(type);
  return blocks(t, count, "size of") * t.typeSize;
}

/**
 * Quantize `src` to `type` into `dst` (at least `quantizedSize(type, src.length)` bytes). Blocks
 * run along `src` in order, so a row-major tensor whose rows are whole blocks quantizes row by row.
 * Throws a TypeError for an unknown or unsupported type, a RangeError when `src.length` is not a
 * multiple of the block size or `dst` is too small.
 */
export function quantizeInto(
  type: QuantType | string | number,
  src: Float32Array,
  dst: Uint8Array,
): void {
  const { t, k } = kernel(type, "quantize");
  if (!(src instanceof Float32Array)) throw new TypeError("quantize: src must be a Float32Array");
  if (!(dst instanceof Uint8Array)) throw new TypeError("quantize: dst must be a Uint8Array");
  const need = blocks(t, src.length, "quantize") * t.typeSize;
  if (dst.length < need) {
    throw new RangeError(
      `quantize ${t.name}: destination has ${dst.length} bytes, ${src.length} values need ${need}`,
    );
  }
  k.q(src, dst);
}

/**
 * Quantize `src` to `type`: a new array of `quantizedSize(type, src.length)` bytes, identical to
 * what libggml's `ggml_quantize_chunk` writes (no importance matrix).
 *
 * @example
 * ```ts
 * import { dequantize, quantize } from "@quantx/kernels";
 * const values = new Float32Array(256).map((_, i) => Math.sin(i));
 * const bytes = quantize("q4_k", values); // 144 bytes
 * const back = dequantize("q4_k", bytes, values.length);
 * ```
 */
export function quantize(type: QuantType | string | number, src: Float32Array): Uint8Array {
  const { t } = kernel(type, "quantize");
  if (!(src instanceof Float32Array)) throw new TypeError("quantize: src must be a Float32Array");
  const dst = new Uint8Array(blocks(t, src.length, "quantize") * t.typeSize);
  quantizeInto(t.id, src, dst);
  return dst;
}

/**
 * Decode `dst.length` values of `type` from the blocks in `src` into `dst`, bit for bit as
 * libggml's `dequantize_row_*`. Throws a TypeError for an unknown or unsupported type, a
 * RangeError when `dst.length` is not a multiple of the block size or `src` is too short.
 */
export function dequantizeInto(
  type: QuantType | string | number,
  src: Uint8Array,
  dst: Float32Array,
): void {
  const { t, k } = kernel(type, "dequantize");
  if (!(src instanceof Uint8Array)) throw new TypeError("dequantize: src must be a Uint8Array");
  if (!(dst instanceof Float32Array)) {
    throw new TypeError("dequantize: dst must be a Float32Array");
  }
  const need = blocks(t, dst.length, "dequantize") * t.typeSize;
  if (src.length < need) {
    throw new RangeError(
      `dequantize ${t.name}: source has ${src.length} bytes, ${dst.length} values need ${need}`,
    );
  }
  k.dq(src, dst);
}

/** Decode `count` values of `type` from `data` (at least `quantizedSize(type, count)` bytes). */
export function dequantize(
  type: QuantType | string | number,
  data: Uint8Array,
  count: number,
): Float32Array {
  const { t } = kernel(type, "dequantize");
  blocks(t, count, "dequantize");
  const dst = new Float32Array(count);
  dequantizeInto(t.id, data, dst);
  return dst;
}
