/**
 * The `--type` names each output format takes, checked before any work starts.
 * @module
 */
import type { OutputFormat, QuantizeOptions } from "./options.ts";
import { GGUF_TENSOR_TYPES } from "./gguf_plan.ts";

/** llama-quantize file types (per-tensor mixes) beyond the plain ggml type names. */
export const GGUF_FILE_TYPES = [
  "q2_k",
  "q3_k_s",
  "q3_k_m",
  "q3_k_l",
  "q4_k_s",
  "q4_k_m",
  "q5_k_s",
  "q5_k_m",
  "q6_k",
] as const;

/** `--type` values per output format (the first is the default). */
export const TYPES_BY_FORMAT: Record<OutputFormat, readonly string[]> = {
  gguf: [...new Set<string>(["q8_0", ...GGUF_TENSOR_TYPES, ...GGUF_FILE_TYPES])],
  bnb: ["nf4", "fp4"],
  qnat: ["nf4"],
};

/**
 * Problems with the type names in `options` for `format` (empty when all are known). Used by the
 * faces to reject bad usage before opening any file.
 */
export function typeNameProblems(format: OutputFormat, options: QuantizeOptions): string[] {
  const problems: string[] = [];
  const known = TYPES_BY_FORMAT[format];
  if (options.type !== undefined && !known.includes(options.type.toLowerCase())) {
    problems.push(
      `unknown --type "${options.type}" for ${format}; expected one of ${known.join(" ")}`,
    );
  }
  const tensorTypes = GGUF_TENSOR_TYPES as readonly string[];
  const check = (flag: string, value: string | undefined) => {
    if (value === undefined) return;
    if (format !== "gguf") problems.push(`--${flag} applies to GGUF output only`);
    else if (!tensorTypes.includes(value.toLowerCase())) {
      problems.push(
        `unknown ggml type "${value}" for --${flag}; expected one of ${tensorTypes.join(" ")}`,
      );
    }
  };
  check("output-tensor-type", options.outputTensorType);
  check("token-embedding-type", options.tokenEmbeddingType);
  for (const o of options.tensorTypes ?? []) check("tensor-type", o.type);
  if (format !== "bnb" && options.maxShardBytes !== undefined) {
    problems.push("--max-shard-size applies to bnb output only");
  }
  if (format === "gguf" && (options.doubleQuant || options.computeDtype)) {
    problems.push("--double-quant and --compute-dtype apply to bnb and qnat output only");
  }
  return problems;
}
