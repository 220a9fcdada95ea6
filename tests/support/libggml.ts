/**
 * libggml (llama.cpp's C library, from the npm package `@node-llama-cpp/linux-x64`) loaded through
 * `Deno.dlopen`: the reference every CPU kernel is tested and benchmarked against.
 * Run `deno task setup` first (the `test` and `bench` tasks do).
 * @module
 */
import { join } from "node:path";

/** Path of libggml-base.so installed by tools/setup.ts. */
export const LIBGGML_PATH = join(
  new URL("../..", import.meta.url).pathname,
  ".cache/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so",
);

/** ggml type ids of the types QuantX quantizes. */
export const GGML_TYPE_ID: Record<string, number> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q5_0: 6,
  q5_1: 7,
  q8_0: 8,
  q2_k: 10,
  q3_k: 11,
  q4_k: 12,
  q5_k: 13,
  q6_k: 14,
  iq4_nl: 20,
  iq4_xs: 23,
  bf16: 30,
};

/** libggml's dequantize function for each type QuantX decodes. */
export const DEQUANT_SYMBOL: Record<string, string> = {
  f16: "ggml_fp16_to_fp32_row",
  bf16: "ggml_bf16_to_fp32_row",
  q4_0: "dequantize_row_q4_0",
  q4_1: "dequantize_row_q4_1",
  q5_0: "dequantize_row_q5_0",
  q5_1: "dequantize_row_q5_1",
  q8_0: "dequantize_row_q8_0",
  q2_k: "dequantize_row_q2_K",
  q3_k: "dequantize_row_q3_K",
  q4_k: "dequantize_row_q4_K",
  q5_k: "dequantize_row_q5_K",
  q6_k: "dequantize_row_q6_K",
  iq4_nl: "dequantize_row_iq4_nl",
  iq4_xs: "dequantize_row_iq4_xs",
};

const row = { parameters: ["buffer", "buffer", "i64"], result: "void" } as const;

function open() {
  return Deno.dlopen(LIBGGML_PATH, {
    ggml_quantize_init: { parameters: ["i32"], result: "void" },
    ggml_quantize_chunk: {
      parameters: ["i32", "buffer", "buffer", "i64", "i64", "i64", "buffer"],
      result: "usize",
    },
    ggml_row_size: { parameters: ["i32", "i64"], result: "usize" },
    ggml_blck_size: { parameters: ["i32"], result: "i64" },
    ggml_type_size: { parameters: ["i32"], result: "usize" },
    ggml_type_name: { parameters: ["i32"], result: "pointer" },
    ggml_fp16_to_fp32_row: row,
    ggml_bf16_to_fp32_row: row,
    dequantize_row_q4_0: row,
    dequantize_row_q4_1: row,
    dequantize_row_q5_0: row,
    dequantize_row_q5_1: row,
    dequantize_row_q8_0: row,
    dequantize_row_q2_K: row,
    dequantize_row_q3_K: row,
    dequantize_row_q4_K: row,
    dequantize_row_q5_K: row,
    dequantize_row_q6_K: row,
    dequantize_row_iq4_nl: row,
    dequantize_row_iq4_xs: row,
  });
}

let lib: ReturnType<typeof open> | undefined;

/** The opened library (opened once per process). */
export function libggml(): ReturnType<typeof open> {
  return lib ??= open();
}

/** Quantize `nrows` rows of `src` with ggml's reference quantizer (no importance matrix). */
export function ggmlQuantize(type: string, src: Float32Array, nrows: number): Uint8Array {
  const id = GGML_TYPE_ID[type];
  if (id === undefined) throw new Error(`libggml: unknown type ${type}`);
  const { symbols } = libggml();
  const perRow = src.length / nrows;
  symbols.ggml_quantize_init(id);
  const dst = new Uint8Array(Number(symbols.ggml_row_size(id, BigInt(perRow))) * nrows);
  const written = symbols.ggml_quantize_chunk(
    id,
    src,
    dst,
    0n,
    BigInt(nrows),
    BigInt(perRow),
    null,
  );
  if (Number(written) !== dst.length) throw new Error(`libggml: wrote ${written} of ${dst.length}`);
  return dst;
}

/** Dequantize `count` values of `type` with libggml's row dequantizer. */
export function ggmlDequantize(type: string, data: Uint8Array, count: number): Float32Array {
  const sym = DEQUANT_SYMBOL[type];
  if (!sym) throw new Error(`libggml: no dequantizer for ${type}`);
  const out = new Float32Array(count);
  const fn = libggml().symbols[sym as keyof ReturnType<typeof open>["symbols"]] as (
    a: Uint8Array,
    b: Float32Array,
    n: bigint,
  ) => void;
  fn(data, out, BigInt(count));
  return out;
}
