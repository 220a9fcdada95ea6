/**
 * The one model of "a file of weights" that every command works on, whatever the format: a list of
 * tensors with their shapes, and a way to read any range of any tensor as float32.
 * @module
 */

import type { GgufFile } from "@quantx/gguf";
import type { FileRange } from "@quantx/core";

/** Formats QuantX reads. */
export type WeightFormat = "safetensors" | "gguf" | "bnb" | "qnat";

/** One logical tensor of a weight file. */
export interface WeightTensor {
  /** Name as stored (for bnb: the parameter name, companions hidden). */
  name: string;
  /** Row-major shape, outermost dimension first (PyTorch order; GGUF `ne` reversed). */
  shape: number[];
  /** Storage type: a safetensors dtype (`bf16`, `f32`, ...), a ggml type name, `nf4` or `fp4`. */
  dtype: string;
  /** Bytes the tensor occupies in the file (all companions included for bnb). */
  byteLength: number;
}

/** An opened weight file or checkpoint folder. */
export interface Weights {
  /** Detected format. */
  format: WeightFormat;
  /** Path as given. */
  path: string;
  /** Tensors in file order. */
  tensors: WeightTensor[];
  /** Architecture (`LlamaForCausalLM` from config.json, or GGUF `general.architecture`), if known. */
  architecture?: string;
  /** Hugging Face `config.json`, when the input is (or sits in) a checkpoint folder. */
  config?: Record<string, unknown>;
  /** Folder holding config and tokenizer files, when known. */
  folder?: string;
  /** Format metadata as plain values (GGUF key/values, safetensors `__metadata__`, QNAT header). */
  metadata: Record<string, unknown>;
  /** Format-specific facts worth showing (bnb quant type, block size, ...). */
  details: Record<string, string | number | boolean>;
  /**
   * Elements `[start, start + count)` of a tensor as float32. Ranges must be whole rows for block
   * types. `into` is a buffer the values may be read into (inputs that can, do), so a job can
   * reuse its buffers; the values are in the returned array either way.
   */
  readF32(name: string, start: number, count: number, into?: Float32Array): Promise<Float32Array>;
  /**
   * Where elements `[start, start + count)` of a tensor lie in a local file, when they are stored
   * there as plain little-endian f32, f16 or bf16 (so that worker threads can read them
   * themselves); `undefined` otherwise. Absent when the input has no such tensors.
   */
  locate?(name: string, start: number, count: number): FileValues | undefined;
  /** The opened GGUF file, for GGUF inputs (raw tensor bytes, typed metadata). */
  gguf?: GgufFile;
  /** Release file handles. */
  close(): Promise<void>;
}

/** Elements of a tensor. */
export function tensorElements(t: { shape: readonly number[] }): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/** Row length (innermost dimension) of a tensor; 1 for scalars. */
export function rowLength(t: { shape: readonly number[] }): number {
  return t.shape.length ? t.shape[t.shape.length - 1] : 1;
}

/** `count` values stored as `dtype`, little-endian, at a byte offset of a local file. */
export interface FileValues extends FileRange {
  /** Number of values. */
  count: number;
  /** Storage type. */
  dtype: "f32" | "f16" | "bf16";
}

/** Bytes per value of each {@link FileValues} dtype. */
export const FILE_VALUE_BYTES = { f32: 4, f16: 2, bf16: 2 } as const;

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The {@link FileValues} of elements `[start, start + count)` of a tensor of `byteLength` bytes
 * stored as `dtype` at byte `dataOffset` of `path`, or `undefined` when `dtype` is not plain
 * f32/f16/bf16 (any case) or the host is big-endian (the workers would read the bytes in the wrong
 * order). A range outside the tensor is a `RangeError`.
 */
export function locateValues(
  tensor: { path: string; dataOffset: number; byteLength: number; dtype: string },
  start: number,
  count: number,
): FileValues | undefined {
  const d = tensor.dtype.toLowerCase();
  if (!HOST_LITTLE_ENDIAN || (d !== "f32" && d !== "f16" && d !== "bf16")) return undefined;
  const size = FILE_VALUE_BYTES[d];
  if (
    !Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 ||
    (start + count) * size > tensor.byteLength
  ) {
    throw new RangeError(
      `${tensor.path}: elements [${start}, ${start + count}) are outside a tensor of ${
        tensor.byteLength / size
      }`,
    );
  }
  return { path: tensor.path, offset: tensor.dataOffset + start * size, count, dtype: d };
}
