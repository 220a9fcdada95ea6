/**
 * `@quantx/kernels`: quantization kernels in plain TypeScript, byte-identical to llama.cpp's
 * libggml and to bitsandbytes.
 *
 * - The ggml type registry ({@link GGML_TYPES}, {@link ggmlType}, {@link rowSize}): every type id
 *   of current ggml with its block size and bytes per block.
 * - {@link quantize} / {@link dequantize} (and the `Into` variants writing to your buffers) for
 *   f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl and iq4_xs:
 *   the bytes `ggml_quantize_chunk` writes (no importance matrix), and the float32 values
 *   `dequantize_row_*` decodes, bit for bit.
 * - bitsandbytes NF4 / FP4 with optional double quantization ({@link quantizeNf4} and friends).
 * - {@link WorkerPool}: the same kernels on worker threads.
 * - {@link errorSumsInto}: the error sums (RMSE, max |error|, cosine, SNR) of a reconstruction.
 *
 * @example
 * ```ts
 * import { dequantize, ggmlType, quantize, rowSize } from "@quantx/kernels";
 *
 * const values = new Float32Array(4096).map((_, i) => Math.sin(i) * 0.02);
 * const bytes = quantize("q4_k", values); // what llama-quantize writes for this row
 * console.log(bytes.length === rowSize("q4_k", values.length)); // true (2304 bytes)
 * console.log(ggmlType("q4_k").id); // 12
 * const back = dequantize("q4_k", bytes, values.length);
 * console.log(Math.max(...back.map((v, i) => Math.abs(v - values[i])))); // small
 * ```
 * @module
 */
export * from "./types.ts";
export * from "./quantize.ts";
export * from "./nf4.ts";
export * from "./pool.ts";
export * from "./error_sums.ts";
export { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from "./cpu/half.ts";
