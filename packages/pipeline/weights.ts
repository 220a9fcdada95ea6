/**
 * The one model of "a file of weights" that every command works on, whatever the format: a list of
 * tensors with their shapes, and a way to read any range of any tensor as float32.
 * @module
 */

import type { GgufFile } from "@quantx/gguf";

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
   * Elements `[start, start + count)` of an f16 or bf16 tensor as their stored little-endian
   * bytes, for kernels that widen them themselves; absent when the input cannot do that. `into`
   * as for {@link Weights.readF32}.
   */
  readHalf?(name: string, start: number, count: number, into?: Uint8Array): Promise<Uint8Array>;
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
