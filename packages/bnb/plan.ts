/**
 * Planning a bitsandbytes 4-bit checkpoint: which parameters are quantized (transformers'
 * `replace_with_bnb_linear`: the weights of Linear layers, minus `llm_int8_skip_modules`), the
 * tensors each parameter becomes, shards that keep a parameter's tensors together, and the
 * `quantization_config` of config.json.
 * @module
 */
import { QuantxError } from "@quantx/core";
import { entryByteLength, type SafetensorsEntry } from "@quantx/safetensors";
import {
  type BnbQuantState,
  type BnbQuantType,
  pythonFloatRepr,
  quantStateJson,
  quantStateSuffix,
  type TorchFloatName,
} from "./quant_state.ts";

/** A tensor of the checkpoint being converted (safetensors dtype, upper case). */
export interface BnbInputTensor {
  /** Name (`model.layers.0.self_attn.q_proj.weight`). */
  name: string;
  /** Row-major shape. */
  shape: readonly number[];
  /** safetensors dtype: `F32`, `F16`, `BF16`, ... */
  dtype: string;
}

/** How to quantize (the `BitsAndBytesConfig` fields that matter for the files). */
export interface BnbOptions {
  /** `bnb_4bit_quant_type`: `nf4` (default) or `fp4`. */
  quantType?: BnbQuantType;
  /** `bnb_4bit_use_double_quant`: quantize the absmax values too (default false). */
  doubleQuant?: boolean;
  /** Values per absmax (default 64, as transformers uses; 32..4096, a power of two). */
  blockSize?: number;
  /**
   * `bnb_4bit_compute_dtype`. Default: config.json's `torch_dtype` (or `dtype`) when it is one of
   * float32/float16/bfloat16, else the dtype of the first quantized weight, else `float32`.
   */
  computeDtype?: TorchFloatName;
  /**
   * Extra modules kept unquantized, matched as transformers matches `llm_int8_skip_modules`
   * against a module's full name. `lm_head` is always kept.
   */
  skipModules?: readonly string[];
  /** Largest shard, in bytes of tensor data (default 5e9, transformers' "5GB"). */
  maxShardBytes?: number;
}

/** {@link BnbOptions} with every default applied. */
export interface BnbResolvedOptions {
  /** `nf4` or `fp4`. */
  quantType: BnbQuantType;
  /** Double quantization. */
  doubleQuant: boolean;
  /** Values per absmax. */
  blockSize: number;
  /** `bnb_4bit_compute_dtype`. */
  computeDtype: TorchFloatName;
  /** The final `llm_int8_skip_modules` (with `lm_head`). */
  skipModules: string[];
  /** Shard limit in bytes of tensor data. */
  maxShardBytes: number;
}

/** One input tensor and what it becomes. */
export interface BnbPlanItem {
  /** The input tensor. */
  source: BnbInputTensor;
  /** True when it becomes 4-bit (a Linear weight), false when copied as it is. */
  quantized: boolean;
  /**
   * The output tensors, in write order: the tensor itself when copied; for a quantized weight
   * `P` (U8 codes), `P.absmax`, `P.quant_map`, with double quantization `P.nested_absmax` and
   * `P.nested_quant_map`, then `P.quant_state.bitsandbytes__<type>`. With double quantization
   * the quant_state's length depends on `nested_offset`, known only from the data: until the
   * writer computes it, its shape here is an upper bound (used only for sharding).
   */
  outputs: SafetensorsEntry[];
  /** Bytes of all outputs (an upper bound with double quantization). */
  byteLength: number;
  /** The quant_state (for quantized items; `nested.offset` is 0 until the writer computes it). */
  state?: BnbQuantState;
}

/** One output file. */
export interface BnbShard {
  /** `model.safetensors`, or `model-0000i-of-0000n.safetensors` when sharded. */
  file: string;
  /** Its input tensors, in order; all outputs of an item stay in one shard. */
  items: BnbPlanItem[];
  /** Bytes of tensor data (an upper bound with double quantization). */
  dataLength: number;
}

/** The whole conversion, before any data is read. */
export interface BnbPlan {
  /** Options with defaults applied. */
  options: BnbResolvedOptions;
  /** Every input tensor, in input order. */
  items: BnbPlanItem[];
  /** Output files. */
  shards: BnbShard[];
  /** Number of quantized parameters. */
  quantizedCount: number;
  /** `quantization_config` for config.json (key order as transformers writes it: sorted). */
  quantizationConfig: Record<string, unknown>;
}

/** Module names never quantized (transformers keeps the output layer in full precision). */
export const BNB_ALWAYS_SKIP: readonly string[] = ["lm_head"];

/** Companion tensor suffixes, in the order bitsandbytes' `QuantState.as_dict` lists them. */
export const BNB_COMPANIONS: readonly string[] = [
  ".absmax",
  ".quant_map",
  ".nested_absmax",
  ".nested_quant_map",
];

const FLOAT_DTYPES: Readonly<Record<string, TorchFloatName>> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
};

/** The torch dtype name of a safetensors float dtype (`BF16` -> `bfloat16`), if it is one. */
export function torchDtypeName(dtype: string): TorchFloatName | undefined {
  return FLOAT_DTYPES[dtype.toUpperCase()];
}

const EMBEDDING = /(^|_)(embed\w*|embeddings?|wte|wpe|shared|relative_attention_bias)$|^embed/;

/**
 * True when transformers' `replace_with_bnb_linear` skips module `module` (full dotted name) for
 * these `llm_int8_skip_modules`: its last component is one of them, or some `key + "."` occurs in
 * the name, or some key equals the name.
 */
export function isSkippedModule(module: string, skip: readonly string[]): boolean {
  const last = module.slice(module.lastIndexOf(".") + 1);
  return skip.some((k) => k === last || k === module || module.includes(k + "."));
}

/**
 * True when `name` is the weight of a Linear layer that a bitsandbytes 4-bit model quantizes: a
 * 2-D float tensor (F32, F16, BF16) named `<module>.weight` whose module is not an embedding
 * (`embed_tokens`, `wte`, `wpe`, `word_embeddings`, `shared`, ...) and not skipped (see
 * {@link isSkippedModule}; `lm_head` always is). Norms and biases are 1-D, so never match.
 *
 * @example
 * ```ts
 * import { isBnbLinearWeight } from "@quantx/bnb";
 * console.log(isBnbLinearWeight({ name: "model.layers.0.mlp.up_proj.weight", shape: [64, 32], dtype: "BF16" })); // true
 * console.log(isBnbLinearWeight({ name: "lm_head.weight", shape: [100, 32], dtype: "BF16" })); // false
 * ```
 */
export function isBnbLinearWeight(
  t: BnbInputTensor,
  skipModules: readonly string[] = BNB_ALWAYS_SKIP,
): boolean {
  if (t.shape.length !== 2 || !t.name.endsWith(".weight") || !torchDtypeName(t.dtype)) return false;
  if (t.shape[0] === 0 || t.shape[1] === 0) return false;
  const module = t.name.slice(0, -".weight".length);
  if (module === "") return false;
  const last = module.slice(module.lastIndexOf(".") + 1);
  if (EMBEDDING.test(last)) return false;
  return !isSkippedModule(module, [...BNB_ALWAYS_SKIP, ...skipModules]);
}

/** Longest `nested_offset` text (Python float repr) plus slack: the quant_state upper bound. */
const MAX_OFFSET_TEXT = 24;

/**
 * The output tensors of one quantized parameter. `state.nested.offset` must be final for the
 * quant_state length to be exact (see {@link BnbPlanItem.outputs}).
 */
export function bnbOutputs(name: string, state: BnbQuantState, exact = true): SafetensorsEntry[] {
  const n = state.shape.reduce((a, b) => a * b, 1);
  const blocks = Math.ceil(n / state.blockSize);
  const out: SafetensorsEntry[] = [
    { name, dtype: "U8", shape: [Math.ceil(n / 2), 1] },
    { name: `${name}.absmax`, dtype: state.nested ? "U8" : "F32", shape: [blocks] },
    { name: `${name}.quant_map`, dtype: "F32", shape: [16] },
  ];
  if (state.nested) {
    out.push(
      {
        name: `${name}.nested_absmax`,
        dtype: "F32",
        shape: [Math.ceil(blocks / state.nested.blockSize)],
      },
      { name: `${name}.nested_quant_map`, dtype: "F32", shape: [256] },
    );
  }
  let len = new TextEncoder().encode(quantStateJson(state)).byteLength;
  if (!exact && state.nested) len = len - "0.0".length + MAX_OFFSET_TEXT;
  out.push({ name: name + quantStateSuffix(state.quantType), dtype: "U8", shape: [len] });
  return out;
}

function shardName(i: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return count === 1 ? "model.safetensors" : `model-${pad(i + 1)}-of-${pad(count)}.safetensors`;
}

function configDtype(config: Record<string, unknown> | undefined): TorchFloatName | undefined {
  for (const k of ["torch_dtype", "dtype"]) {
    const v = config?.[k];
    if (v === "float32" || v === "float16" || v === "bfloat16") return v;
  }
  return undefined;
}

/**
 * Plans a bitsandbytes 4-bit checkpoint for `tensors` (see {@link BnbPlan}). `config` is the
 * input's config.json (for the default compute dtype). Throws a `QuantxError` (`EINVAL`) for bad
 * options. Sharding follows transformers: in order, a new shard when the next parameter (all its
 * tensors) would pass `maxShardBytes`.
 *
 * @example
 * ```ts
 * import { planBnb } from "@quantx/bnb";
 * const plan = planBnb([
 *   { name: "model.embed_tokens.weight", shape: [100, 64], dtype: "BF16" },
 *   { name: "model.layers.0.mlp.up_proj.weight", shape: [128, 64], dtype: "BF16" },
 * ], { quantType: "nf4" });
 * console.log(plan.quantizedCount, plan.items[1].outputs.map((e) => e.name));
 * ```
 */
export function planBnb(
  tensors: readonly BnbInputTensor[],
  options: BnbOptions = {},
  config?: Record<string, unknown>,
): BnbPlan {
  const bad = (m: string) => new QuantxError(`bnb: ${m}`, { code: "EINVAL" });
  const quantType = options.quantType ?? "nf4";
  if (quantType !== "nf4" && quantType !== "fp4") {
    throw bad(`quant type ${JSON.stringify(quantType)} is not nf4 or fp4`);
  }
  const blockSize = options.blockSize ?? 64;
  if (![32, 64, 128, 256, 512, 1024, 2048, 4096].includes(blockSize)) {
    throw bad(`block size ${blockSize} is not a power of two from 32 to 4096`);
  }
  const doubleQuant = options.doubleQuant ?? false;
  const maxShardBytes = options.maxShardBytes ?? 5e9;
  if (!(maxShardBytes > 0)) throw bad(`shard size ${maxShardBytes} must be positive`);
  const userSkip = [...(options.skipModules ?? [])];
  for (const s of userSkip) {
    if (typeof s !== "string" || s === "") throw bad(`skip module ${JSON.stringify(s)} is empty`);
  }

  const names = new Set<string>();
  const items: BnbPlanItem[] = [];
  let firstDtype: TorchFloatName | undefined;
  for (const t of tensors) {
    if (names.has(t.name)) throw bad(`duplicate tensor ${JSON.stringify(t.name)}`);
    names.add(t.name);
    if (isBnbLinearWeight(t, userSkip)) {
      const dtype = torchDtypeName(t.dtype)!;
      firstDtype ??= dtype;
      const state: BnbQuantState = {
        quantType,
        blockSize,
        dtype,
        shape: [...t.shape],
        ...(doubleQuant
          ? { nested: { blockSize: 256, dtype: "float32" as const, offset: 0 } }
          : {}),
      };
      const outputs = bnbOutputs(t.name, state, !doubleQuant);
      items.push({
        source: t,
        quantized: true,
        outputs,
        byteLength: outputs.reduce((s, e) => s + entryByteLength(e), 0),
        state,
      });
    } else {
      const out = { name: t.name, dtype: t.dtype, shape: [...t.shape] };
      items.push({ source: t, quantized: false, outputs: [out], byteLength: entryByteLength(out) });
    }
  }
  for (const it of items) {
    for (const o of it.outputs.slice(1)) {
      if (names.has(o.name)) {
        throw bad(`output tensor ${JSON.stringify(o.name)} clashes with an input tensor`);
      }
    }
  }

  const groups: { items: BnbPlanItem[]; dataLength: number }[] = [];
  let cur: { items: BnbPlanItem[]; dataLength: number } | undefined;
  for (const it of items) {
    if (!cur || (cur.items.length > 0 && cur.dataLength + it.byteLength > maxShardBytes)) {
      cur = { items: [], dataLength: 0 };
      groups.push(cur);
    }
    cur.items.push(it);
    cur.dataLength += it.byteLength;
  }
  if (groups.length === 0) groups.push({ items: [], dataLength: 0 });
  const shards = groups.map((g, i) => ({ file: shardName(i, groups.length), ...g }));

  // transformers replaces every Linear not in an explicit llm_int8_skip_modules, so every kept
  // 2-D float weight's module is listed too (harmless for embeddings, needed for a Linear that
  // the name rules keep, such as GPT-NeoX's `embed_out`).
  const skipModules = [...BNB_ALWAYS_SKIP];
  for (const s of userSkip) if (!skipModules.includes(s)) skipModules.push(s);
  for (const it of items) {
    const t = it.source;
    if (
      it.quantized || t.shape.length !== 2 || !t.name.endsWith(".weight") ||
      !torchDtypeName(t.dtype)
    ) continue;
    const module = t.name.slice(0, -".weight".length);
    if (module !== "" && !isSkippedModule(module, skipModules)) skipModules.push(module);
  }
  const computeDtype = options.computeDtype ?? configDtype(config) ?? firstDtype ?? "float32";
  if (!["float32", "float16", "bfloat16"].includes(computeDtype)) {
    throw bad(`compute dtype ${JSON.stringify(computeDtype)} is not float32, float16 or bfloat16`);
  }
  const resolved: BnbResolvedOptions = {
    quantType,
    doubleQuant,
    blockSize,
    computeDtype,
    skipModules,
    maxShardBytes,
  };
  return {
    options: resolved,
    items,
    shards,
    quantizedCount: items.filter((i) => i.quantized).length,
    quantizationConfig: bnbQuantizationConfig(resolved),
  };
}

/** A float that {@link bnbConfigJson} writes with a decimal point (`6.0`), as Python does. */
export class PyFloat {
  /** The value. */
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
  /** JSON.stringify gives the plain number. */
  toJSON(): number {
    return this.value;
  }
}

/**
 * `quantization_config` as transformers' `BitsAndBytesConfig.to_dict()` writes it for a 4-bit
 * model (keys sorted), with these options.
 */
export function bnbQuantizationConfig(
  options: Pick<BnbResolvedOptions, "quantType" | "doubleQuant" | "computeDtype" | "skipModules">,
): Record<string, unknown> {
  return {
    _load_in_4bit: true,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: options.computeDtype,
    bnb_4bit_quant_storage: "uint8",
    bnb_4bit_quant_type: options.quantType,
    bnb_4bit_use_double_quant: options.doubleQuant,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: [...options.skipModules],
    llm_int8_threshold: new PyFloat(6),
    load_in_4bit: true,
    load_in_8bit: false,
    quant_method: "bitsandbytes",
  };
}

function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function pyString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function pyJson(v: unknown, indent: string): string {
  const inner = indent + "  ";
  if (v instanceof PyFloat) return pyFloat(v.value, true);
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[\n${v.map((x) => inner + pyJson(x, inner)).join(",\n")}\n${indent}]`;
  }
  if (typeof v === "object" && v !== null) {
    const rec = v as Record<string, unknown>;
    const keys = Object.keys(rec).filter((k) => rec[k] !== undefined).sort(compareCodePoints);
    if (keys.length === 0) return "{}";
    return `{\n${
      keys.map((k) => `${inner}${pyString(k)}: ${pyJson(rec[k], inner)}`).join(",\n")
    }\n${indent}}`;
  }
  if (typeof v === "string") return pyString(v);
  if (typeof v === "number") return pyFloat(v, false);
  if (typeof v === "boolean") return v ? "true" : "false";
  return "null";
}

function pyFloat(x: number, forceFloat: boolean): string {
  if (Number.isInteger(x) && !forceFloat && Math.abs(x) < 1e16) return String(x);
  return pythonFloatRepr(x);
}

/**
 * config.json for the quantized checkpoint: `config` with `quantization_config` set (see
 * {@link bnbQuantizationConfig}), as transformers writes it (`json.dumps(indent=2,
 * sort_keys=True)` plus a newline). Integers print as integers, other numbers as Python floats.
 *
 * @example
 * ```ts
 * import { bnbConfigJson, planBnb } from "@quantx/bnb";
 * const plan = planBnb([], { computeDtype: "bfloat16" });
 * const text = bnbConfigJson({ model_type: "llama", rms_norm_eps: 1e-5 }, plan);
 * console.log(JSON.parse(text).quantization_config.quant_method); // bitsandbytes
 * ```
 */
export function bnbConfigJson(
  config: Record<string, unknown>,
  plan: Pick<BnbPlan, "quantizationConfig">,
): string {
  return pyJson({ ...config, quantization_config: plan.quantizationConfig }, "") + "\n";
}
