/**
 * Options and results of the jobs, shared by the CLI, the preview server and the VS Code extension.
 * @module
 */
import type { ProgressCallback } from "@quantx/core";
import type { ErrorSummary } from "./stats.ts";

/** Output container of `quantize`. */
export type OutputFormat = "gguf" | "bnb" | "qnat";

/** Where kernels run: `auto` picks WebGPU on a real (non-fallback) adapter, else the CPU. */
export type Backend = "cpu" | "webgpu" | "auto";

/** A `--tensor-type REGEX=TYPE` override. */
export interface TensorTypeOverride {
  /** Matched against the output tensor name. */
  pattern: RegExp;
  /** ggml type name. */
  type: string;
}

/** How to quantize. Every field is optional; defaults are llama.cpp's and bitsandbytes'. */
export interface QuantizeOptions {
  /** Output container (default: from the output name: `.qnat` -> qnat, `.gguf` -> gguf, else gguf). */
  to?: OutputFormat;
  /** GGUF: a ggml type (`q4_0`) or a llama-quantize file type (`q4_k_m`); bnb/qnat: `nf4` or `fp4`. */
  type?: string;
  /** Kernel backend (default `cpu`). */
  backend?: Backend;
  /** Worker threads (default: all cores). */
  threads?: number;
  /** Replace an existing output. */
  force?: boolean;
  /** Model card: a path, `false` for none; default README.md beside the output when absent. */
  card?: string | false;
  /** GGUF: every eligible tensor gets the base type (llama-quantize `--pure`). */
  pure?: boolean;
  /** GGUF: keep output.weight unquantized (`--leave-output-tensor`). */
  leaveOutputTensor?: boolean;
  /** GGUF: type of output.weight (`--output-tensor-type`). */
  outputTensorType?: string;
  /** GGUF: type of token_embd.weight (`--token-embedding-type`). */
  tokenEmbeddingType?: string;
  /** GGUF: per-tensor overrides (`--tensor-type REGEX=TYPE`), first match wins. */
  tensorTypes?: TensorTypeOverride[];
  /** bnb/qnat: double-quantize the absmax scales. */
  doubleQuant?: boolean;
  /** bnb: compute dtype recorded in quantization_config (default bf16). */
  computeDtype?: "bf16" | "f16" | "f32";
  /** bnb: largest shard in bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
}

/** Cancellation and progress reporting for a job. */
export interface RunControl {
  /** Abort the job; partial outputs are removed. */
  signal?: AbortSignal;
  /** Called as tensors are processed. */
  onProgress?: ProgressCallback;
  /** Called with one-line notices worth telling the user (fallbacks, requantization, backend). */
  onNotice?: (message: string) => void;
}

/** One tensor of a plan. */
export interface PlanEntry {
  /** Output tensor name. */
  name: string;
  /** Input tensor name it comes from. */
  source: string;
  /** Output shape in the output format's own order (GGUF: `ne`). */
  shape: number[];
  /** Output type (ggml type name, `nf4`, `fp4`, or a safetensors dtype). */
  type: string;
  /** Output bytes of the tensor. */
  bytes: number;
  /** Elements. */
  elements: number;
}

/** What a quantize run will write. */
export interface Plan {
  /** Output container. */
  format: OutputFormat;
  /** Output path. */
  output: string;
  /** Input architecture, when known. */
  architecture?: string;
  /** The file type asked for (e.g. `q4_k_m`). */
  fileType: string;
  /** Tensors in output order. */
  entries: PlanEntry[];
  /** Sum of tensor bytes (the file adds headers and padding). */
  totalBytes: number;
  /** Notices about choices made (fallback types, requantization). */
  notices: string[];
}

/** What a quantize run wrote. */
export interface QuantizeResult {
  /** The plan it followed. */
  plan: Plan;
  /** Output path. */
  output: string;
  /** File size in bytes (sum over files for a folder output). */
  bytes: number;
  /** Seconds taken. */
  seconds: number;
  /** Number of tensors per output type. */
  typeCounts: Record<string, number>;
  /** Bits per weight over all tensors. */
  bitsPerWeight: number;
  /** Quantization error over all quantized tensors (measured while writing). */
  error: ErrorSummary;
  /** Path of the model card written, if any. */
  card?: string;
}
