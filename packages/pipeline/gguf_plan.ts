/**
 * Planning a GGUF output: tensor names, `ne` shapes, per-tensor types and metadata, computed
 * before any data is read so the writer can lay out the file up front.
 * @module
 */
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { QuantxError } from "@quantx/core";
import {
  type ConvertedTensor,
  type ConvertOptions,
  type GgufConversionPlan,
  GgufValueType,
  permuteRows,
  planGgufRequant,
  planHfToGguf,
  type TokenizerFiles,
} from "@quantx/gguf";
import { ggmlType, QUANT_TYPES, rowSize } from "@quantx/kernels";
import type { Plan, PlanEntry, QuantizeOptions } from "./options.ts";
import { rowLength, tensorElements, type Weights } from "./weights.ts";
import { UserError } from "./user_error.ts";

/** One metadata key/value with its GGUF type. */
export interface GgufKv {
  /** Key, e.g. `general.architecture`. */
  key: string;
  /** GGUF value type. */
  type: GgufValueType;
  /** Value (arrays: `{ itemType, value }` as the writer takes them). */
  value: unknown;
}

/** Rows of a chunk rewritten before quantization (the q/k permutation). */
export interface RowTransform {
  /** Chunks must hold a multiple of this many rows. */
  rowMultiple: number;
  /** Return the transformed values of rows `[row, row + rows)`. */
  apply(values: Float32Array, row: number, rows: number): Float32Array;
}

/** A plan for a GGUF file. */
export interface GgufPlan extends Plan {
  /** `general.alignment`. */
  alignment: number;
  /** Metadata in write order (`general.architecture` first). */
  kv: GgufKv[];
  /** Per output tensor name, a row transform to apply. */
  transforms: Map<string, RowTransform>;
  /** Tensors whose values the plan itself holds (e.g. Llama 3 `rope_freqs.weight`). */
  inline: Map<string, Float32Array>;
  /** Tensors copied byte for byte from a GGUF input (already in the target type). */
  copies: Set<string>;
}

/** ggml types `--type` takes for GGUF output: every type the kernels write. */
export const GGUF_TENSOR_TYPES: readonly string[] = QUANT_TYPES;

/** Bytes of a tensor of `type` with ggml shape `ne`. */
export function tensorBytes(type: string, ne: readonly number[]): number {
  const rows = ne.slice(1).reduce((a, b) => a * b, 1);
  return rowSize(type, ne[0]) * rows;
}

/** Plan a generic GGUF: names kept, shapes reversed, every eligible tensor of `type`. */
export function planGenericGguf(
  weights: Weights,
  output: string,
  options: QuantizeOptions,
): GgufPlan {
  const type = (options.type ?? "q8_0").toLowerCase();
  if (!(GGUF_TENSOR_TYPES as readonly string[]).includes(type)) {
    throw new UserError(
      `--type ${options.type} is a llama-quantize file type, which needs a known architecture ` +
        `(a Hugging Face folder with config.json, or a GGUF with general.architecture); ` +
        `for ${weights.path} use one of ${GGUF_TENSOR_TYPES.join(" ")}`,
    );
  }
  const notices: string[] = [];
  const entries: PlanEntry[] = [];
  for (const t of weights.tensors) {
    const ne = [...t.shape].reverse();
    if (ne.length === 0) ne.push(1);
    let chosen = t.shape.length >= 2 ? type : "f32";
    const override = options.tensorTypes?.find((o) => o.pattern.test(t.name));
    if (override) chosen = override.type;
    const block = ggmlType(chosen).blockSize;
    if (ne[0] % block !== 0 && override) {
      throw new UserError(
        `${t.name}: row length ${
          ne[0]
        } is not a multiple of ${chosen}'s block size ${block}, so it cannot be ${chosen}`,
      );
    }
    if (ne[0] % block !== 0) {
      notices.push(
        `${t.name}: row length ${
          ne[0]
        } is not a multiple of ${chosen}'s block size ${block}; kept as f32`,
      );
      chosen = "f32";
    }
    entries.push({
      name: t.name,
      source: t.name,
      shape: ne,
      type: chosen,
      bytes: tensorBytes(chosen, ne),
      elements: tensorElements(t),
    });
  }
  const kv: GgufKv[] = [
    {
      key: "general.architecture",
      type: GgufValueType.STRING,
      value: weights.architecture ?? "generic",
    },
    { key: "general.name", type: GgufValueType.STRING, value: basename(weights.path) },
    { key: "general.quantization_version", type: GgufValueType.UINT32, value: 2 },
  ];
  return {
    format: "gguf",
    output,
    architecture: weights.architecture,
    fileType: type,
    entries,
    totalBytes: entries.reduce((s, e) => s + e.bytes, 0),
    notices,
    alignment: 32,
    kv,
    transforms: new Map(),
    inline: new Map(),
    copies: new Set(),
  };
}

/** Row length helper re-exported for planners. */
export { rowLength };

/**
 * Plan a GGUF output for any input: a Hugging Face checkpoint (config.json with a supported
 * architecture) is converted as convert_hf_to_gguf + llama-quantize would; a GGUF with a known
 * architecture is requantized under llama-quantize's policy; anything else keeps its tensor names
 * and gets the ggml type asked for ({@link planGenericGguf}).
 */
export async function planGguf(
  weights: Weights,
  output: string,
  options: QuantizeOptions,
): Promise<GgufPlan> {
  const convert: ConvertOptions = {
    fileType: (options.type ?? "q8_0").toLowerCase(),
    pure: options.pure,
    leaveOutputTensor: options.leaveOutputTensor,
    outputTensorType: options.outputTensorType,
    tokenEmbeddingType: options.tokenEmbeddingType,
    tensorTypes: options.tensorTypes,
  };
  try {
    if (weights.config && (weights.format === "safetensors" || weights.format === "bnb")) {
      const tokenizer = weights.folder ? await readTokenizerFiles(weights.folder) : undefined;
      const plan = planHfToGguf({
        config: weights.config,
        tensors: weights.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype })),
        tokenizer,
      }, convert);
      return fromConversion(weights, output, plan);
    }
    if (weights.format === "gguf" && weights.gguf && knownGgufArch(weights.architecture)) {
      const plan = planGgufRequant(
        { metadata: weights.gguf.metadata, tensors: weights.gguf.tensors },
        convert,
      );
      return fromConversion(weights, output, plan);
    }
  } catch (e) {
    if (e instanceof QuantxError && (e.code === "EUNSUPPORTED" || e.code === "EINVAL")) {
      throw new UserError(e.message);
    }
    throw e;
  }
  return planGenericGguf(weights, output, options);
}

const GGUF_POLICY_ARCHS = new Set(["llama", "qwen2", "qwen3"]);

function knownGgufArch(arch: string | undefined): boolean {
  return arch !== undefined && GGUF_POLICY_ARCHS.has(arch);
}

/** Read tokenizer.json, tokenizer_config.json, tokenizer.model and chat_template.jinja if present. */
async function readTokenizerFiles(folder: string): Promise<TokenizerFiles | undefined> {
  const read = (name: string) => readFile(join(folder, name)).catch(() => undefined);
  const [json, config, model, template] = await Promise.all([
    read("tokenizer.json"),
    read("tokenizer_config.json"),
    read("tokenizer.model"),
    read("chat_template.jinja"),
  ]);
  if (!json && !model) return undefined;
  const parse = (bytes: Uint8Array, name: string) => {
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new UserError(`${join(folder, name)}: not valid JSON (${(e as Error).message})`);
    }
  };
  return {
    tokenizerJson: json ? parse(json, "tokenizer.json") : undefined,
    tokenizerConfig: config ? parse(config, "tokenizer_config.json") : undefined,
    tokenizerModel: model ? new Uint8Array(model) : undefined,
    chatTemplate: template ? new TextDecoder().decode(template) : undefined,
  };
}

/** The q/k permutation of convert_hf_to_gguf as a chunk transform. */
function permuteTransform(t: ConvertedTensor): RowTransform | undefined {
  const p = t.permute;
  if (!p) return undefined;
  if (p.rowLength === 1) {
    // a 1-D bias: permute the whole vector in one chunk
    return {
      rowMultiple: p.rows,
      apply: (values, row, rows) => permuteRows(values, row, rows, 1, p.nHead, p.rows),
    };
  }
  return {
    rowMultiple: p.headRows,
    apply: (values, row, rows) => permuteRows(values, row, rows, p.rowLength, p.nHead, p.rows),
  };
}

function fromConversion(weights: Weights, output: string, plan: GgufConversionPlan): GgufPlan {
  const entries: PlanEntry[] = [];
  const transforms = new Map<string, RowTransform>();
  const inline = new Map<string, Float32Array>();
  const copies = new Set<string>();
  for (const t of plan.tensors) {
    const elements = t.ne.reduce((a, b) => a * b, 1);
    entries.push({
      name: t.name,
      source: t.source,
      shape: t.ne,
      type: t.type,
      bytes: tensorBytes(t.type, t.ne),
      elements,
    });
    const transform = permuteTransform(t);
    if (transform) transforms.set(t.name, transform);
    if (t.data) inline.set(t.name, t.data);
    if (t.copy) copies.add(t.name);
  }
  return {
    format: "gguf",
    output,
    architecture: weights.architecture,
    fileType: plan.fileType.name,
    entries,
    totalBytes: entries.reduce((s, e) => s + e.bytes, 0),
    notices: plan.notices,
    alignment: 32,
    kv: plan.kv,
    transforms,
    inline,
    copies,
  };
}
