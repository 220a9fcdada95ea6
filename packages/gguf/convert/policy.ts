/**
 * llama-quantize's per-tensor type policy (`src/llama-quant.cpp`: `tensor_allows_quantization`,
 * `llama_tensor_get_type`, `llama_tensor_get_type_impl`, `tensor_type_fallback`), for the file
 * types `f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s
 * q5_k_m q6_k`, with the overrides `--pure`, `--leave-output-tensor`, `--output-tensor-type`,
 * `--token-embedding-type` and `--tensor-type REGEX=TYPE`.
 * @module
 */
import { QUANT_TYPES } from "@quantx/kernels";
import { QuantxError } from "@quantx/core";

/** A llama.cpp file type (`general.file_type`) QuantX can produce. */
export interface FileTypeInfo {
  /** Lower-case name, e.g. `q4_k_m`. */
  name: string;
  /** `llama_ftype` value written as `general.file_type`. */
  id: number;
  /** The ggml type every eligible tensor gets before the mix rules. */
  defaultType: string;
}

/** The file types of llama-quantize that QuantX supports, in llama.cpp's order. */
export const FILE_TYPES: readonly FileTypeInfo[] = [
  { name: "f32", id: 0, defaultType: "f32" },
  { name: "f16", id: 1, defaultType: "f16" },
  { name: "bf16", id: 32, defaultType: "bf16" },
  { name: "q4_0", id: 2, defaultType: "q4_0" },
  { name: "q4_1", id: 3, defaultType: "q4_1" },
  { name: "q5_0", id: 8, defaultType: "q5_0" },
  { name: "q5_1", id: 9, defaultType: "q5_1" },
  { name: "q8_0", id: 7, defaultType: "q8_0" },
  { name: "q2_k", id: 10, defaultType: "q2_k" },
  { name: "q3_k_s", id: 11, defaultType: "q3_k" },
  { name: "q3_k_m", id: 12, defaultType: "q3_k" },
  { name: "q3_k_l", id: 13, defaultType: "q3_k" },
  { name: "q4_k_s", id: 14, defaultType: "q4_k" },
  { name: "q4_k_m", id: 15, defaultType: "q4_k" },
  { name: "q5_k_s", id: 16, defaultType: "q5_k" },
  { name: "q5_k_m", id: 17, defaultType: "q5_k" },
  { name: "q6_k", id: 18, defaultType: "q6_k" },
];

/** Names of {@link FILE_TYPES}. */
export const FILE_TYPE_NAMES: readonly string[] = FILE_TYPES.map((f) => f.name);

/**
 * Look up a file type by name (case-insensitive; `Q4_K_M` and `MOSTLY_Q4_K_M` work too). Throws a
 * {@link QuantxError} (code `EINVAL`) listing the valid names otherwise.
 */
export function fileTypeInfo(name: string): FileTypeInfo {
  const n = String(name).trim().toLowerCase().replace(/^mostly_/, "").replace(/^all_/, "");
  const f = FILE_TYPES.find((x) => x.name === n);
  if (!f) {
    throw new QuantxError(
      `unknown GGUF file type '${name}'; valid file types: ${FILE_TYPE_NAMES.join(", ")}`,
      { code: "EINVAL" },
    );
  }
  return f;
}

/** ggml type ids and block sizes, for the types the policy chooses or accepts. */
const GGML: Record<string, { id: number; block: number; quantized: boolean }> = {
  f32: { id: 0, block: 1, quantized: false },
  f16: { id: 1, block: 1, quantized: false },
  q4_0: { id: 2, block: 32, quantized: true },
  q4_1: { id: 3, block: 32, quantized: true },
  q5_0: { id: 6, block: 32, quantized: true },
  q5_1: { id: 7, block: 32, quantized: true },
  q8_0: { id: 8, block: 32, quantized: true },
  q8_1: { id: 9, block: 32, quantized: true },
  q2_k: { id: 10, block: 256, quantized: true },
  q3_k: { id: 11, block: 256, quantized: true },
  q4_k: { id: 12, block: 256, quantized: true },
  q5_k: { id: 13, block: 256, quantized: true },
  q6_k: { id: 14, block: 256, quantized: true },
  q8_k: { id: 15, block: 256, quantized: true },
  iq2_xxs: { id: 16, block: 256, quantized: true },
  iq2_xs: { id: 17, block: 256, quantized: true },
  iq3_xxs: { id: 18, block: 256, quantized: true },
  iq1_s: { id: 19, block: 256, quantized: true },
  iq4_nl: { id: 20, block: 32, quantized: true },
  iq3_s: { id: 21, block: 256, quantized: true },
  iq2_s: { id: 22, block: 256, quantized: true },
  iq4_xs: { id: 23, block: 256, quantized: true },
  i8: { id: 24, block: 1, quantized: false },
  i16: { id: 25, block: 1, quantized: false },
  i32: { id: 26, block: 1, quantized: false },
  i64: { id: 27, block: 1, quantized: false },
  f64: { id: 28, block: 1, quantized: false },
  iq1_m: { id: 29, block: 256, quantized: true },
  bf16: { id: 30, block: 1, quantized: false },
  tq1_0: { id: 34, block: 256, quantized: true },
  tq2_0: { id: 35, block: 256, quantized: true },
  mxfp4: { id: 39, block: 32, quantized: true },
};

/** ggml types a user may ask for in the overrides (the types QuantX's kernels write). */
export const OVERRIDE_TYPES: readonly string[] = QUANT_TYPES;

/** Block size (elements) of ggml type `type` (lower-case name); undefined when unknown. */
export function ggmlBlockSize(type: string): number | undefined {
  return GGML[type.toLowerCase()]?.block;
}

/** Lower-case ggml type name of type id `id`; undefined when unknown. */
export function ggmlTypeNameOf(id: number): string | undefined {
  for (const [n, t] of Object.entries(GGML)) if (t.id === id) return n;
  return undefined;
}

function overrideType(what: string, type: string): string {
  const t = String(type).trim().toLowerCase();
  if (!OVERRIDE_TYPES.includes(t)) {
    throw new QuantxError(
      `${what}: unknown or unsupported ggml type '${type}'; valid types: ${
        OVERRIDE_TYPES.join(", ")
      }`,
      { code: "EINVAL" },
    );
  }
  return t;
}

/** llama-quantize's overrides. */
export interface PolicyOptions {
  /** `--pure`: every eligible tensor gets the file type's default type (no mix rules). */
  pure?: boolean;
  /** `--leave-output-tensor`: `output.weight` keeps its type. */
  leaveOutputTensor?: boolean;
  /** `--output-tensor-type T`. */
  outputTensorType?: string;
  /** `--token-embedding-type T`. */
  tokenEmbeddingType?: string;
  /** `--tensor-type REGEX=T`, first match wins (applies when the file type is quantized). */
  tensorTypes?: { pattern: RegExp; type: string }[];
}

/** What the policy needs to know about the model (llama.cpp's hparams). */
export interface PolicyModel {
  /** GGUF architecture name (`llama`, `qwen2`, ...). */
  arch: string;
  /** `<arch>.block_count`. */
  nLayer: number;
  /** Attention heads (layer 0). */
  nHead: number;
  /** KV heads (layer 0). */
  nHeadKv: number;
  /** `<arch>.expert_count` (0 when dense). */
  nExpert?: number;
}

/** One tensor as the policy sees it. */
export interface PolicyTensor {
  /** GGUF tensor name. */
  name: string;
  /** Shape in ggml `ne` order. */
  ne: readonly number[];
  /** Its type before quantization (lower-case ggml name; `f32` for converted HF weights). */
  type: string;
}

/** The policy's answer for one tensor. */
export interface PolicyChoice {
  /** Target ggml type (lower-case). */
  type: string;
  /** True when llama-quantize would quantize/convert it (false: kept as it is). */
  quantize: boolean;
  /** Set when a shape fallback changed the type: the type that did not fit. */
  fallbackFrom?: string;
}

type Category =
  | "token_embd"
  | "attn_q"
  | "attn_v"
  | "attn_k"
  | "attn_qkv"
  | "attn_kv_b"
  | "attn_output"
  | "ffn_up"
  | "ffn_gate"
  | "ffn_down"
  | "output"
  | "other";

function category(name: string): Category {
  if (name === "output.weight") return "output";
  if (name === "token_embd.weight" || name === "per_layer_token_embd.weight") return "token_embd";
  if (name.includes("attn_qkv.weight")) return "attn_qkv";
  if (name.includes("attn_kv_b.weight")) return "attn_kv_b";
  if (name.includes("attn_v.weight")) return "attn_v";
  if (name.includes("attn_k.weight")) return "attn_k";
  if (name.includes("attn_q.weight")) return "attn_q";
  if (name.includes("attn_output.weight")) return "attn_output";
  if (name.includes("ffn_up")) return "ffn_up";
  if (name.includes("ffn_gate")) return "ffn_gate";
  if (name.includes("ffn_down")) return "ffn_down";
  return "other";
}

const isAttnV = (c: Category): boolean => c === "attn_v" || c === "attn_qkv" || c === "attn_kv_b";

/** ggml_n_dims: 1 + index of the last dimension above 1 (at least 1). */
export function ggmlNDims(ne: readonly number[]): number {
  for (let i = ne.length - 1; i >= 1; i--) if (ne[i] > 1) return i + 1;
  return 1;
}

const NOT_QUANTIZED_PARTS = [
  "ffn_gate_inp.weight",
  "ffn_gate_tid2eid.weight",
  "altup",
  "laurel",
  "per_layer_model_proj",
  "ssm_conv1d",
  "shortconv.conv.weight",
  "indexer.k_proj.weight",
  "indexer.q_proj.weight",
  "time_mix_first.weight",
  "time_mix_w0.weight",
  "time_mix_w1.weight",
  "time_mix_w2.weight",
  "time_mix_v0.weight",
  "time_mix_v1.weight",
  "time_mix_v2.weight",
  "time_mix_a0.weight",
  "time_mix_a1.weight",
  "time_mix_a2.weight",
  "time_mix_g1.weight",
  "time_mix_g2.weight",
  "time_mix_decay_w1.weight",
  "time_mix_decay_w2.weight",
  "time_mix_lerp_fused.weight",
  "attn_rel_b.weight",
  ".position_embd",
  "sam.pos_embd",
  "sam.neck.",
  "sam.net_",
  ".rel_pos",
  ".patch_embd",
  ".patch_merger",
  "a.rvq.codebook",
  "mm.a.code_embd",
];

/**
 * llama-quantize's `tensor_allows_quantization`: at least 2 dimensions, name ends in `weight`, not
 * a norm, not `output.weight` under `--leave-output-tensor`, and none of the small special tensors.
 */
export function tensorAllowsQuantization(
  name: string,
  ne: readonly number[],
  leaveOutputTensor = false,
): boolean {
  if (ggmlNDims(ne) < 2) return false;
  if (!name.endsWith("weight")) return false;
  if (name.includes("_norm.weight")) return false;
  if (leaveOutputTensor && name === "output.weight") return false;
  if (name === "position_embd.weight" || name === "token_types.weight") return false;
  for (const p of NOT_QUANTIZED_PARTS) if (name.includes(p)) return false;
  return true;
}

const isFalcon = (arch: string): boolean => arch === "falcon";

/** llama.cpp's LLM_TYPE_70B, the one model size the policy looks at (as `load_hparams` sets it). */
export function isModelType70B(m: PolicyModel): boolean {
  const nExpert = m.nExpert ?? 0;
  switch (m.arch) {
    case "llama":
      return nExpert !== 8 && m.nLayer === 80 && m.nHead !== m.nHeadKv;
    case "qwen2":
    case "deci":
    case "olmo":
      return m.nLayer === 80;
    case "jais2":
      return m.nLayer === 68;
    default:
      return false;
  }
}

/**
 * Choose every tensor's type as llama-quantize does for `fileType`. Tensors are visited in
 * llama-quantize's order (see {@link compareTensorNames}); the returned array follows the order of
 * `tensors`. Counters (`i_attention_wv`, `i_ffn_down`, ...) advance exactly as in llama.cpp.
 */
export function chooseTensorTypes(
  model: PolicyModel,
  tensors: readonly PolicyTensor[],
  fileType: string,
  options: PolicyOptions = {},
): { choices: PolicyChoice[]; notices: string[] } {
  const ft = fileTypeInfo(fileType).name;
  const defaultType = fileTypeInfo(ft).defaultType;
  const notices: string[] = [];
  const outputType = options.outputTensorType === undefined
    ? undefined
    : overrideType("outputTensorType", options.outputTensorType);
  const embdType = options.tokenEmbeddingType === undefined
    ? undefined
    : overrideType("tokenEmbeddingType", options.tokenEmbeddingType);
  const patterns = (options.tensorTypes ?? []).map((p, i) => {
    if (!(p?.pattern instanceof RegExp)) {
      throw new QuantxError(`tensorTypes[${i}]: pattern must be a RegExp`, { code: "EINVAL" });
    }
    return { pattern: p.pattern, type: overrideType(`tensorTypes[${i}] (${p.pattern})`, p.type) };
  });

  const nExpert = Math.max(1, model.nExpert ?? 0);
  const hExpert = model.nExpert ?? 0;
  const nGqa = model.nHeadKv === 0 ? 0 : Math.trunc(model.nHead / model.nHeadKv);
  const is70B = isModelType70B(model);
  const arch = model.arch;

  const order = tensors.map((_, i) => i).sort((a, b) =>
    compareTensorNames(tensors[a].name, tensors[b].name)
  );
  const cats = tensors.map((t) => category(t.name));
  let nAttentionWv = 0;
  let tied = true;
  for (const c of cats) {
    if (isAttnV(c)) nAttentionWv++;
    if (c === "output") tied = false;
  }
  const nFfn = model.nLayer;
  let iAttentionWv = 0;
  let iFfnDown = 0;
  let iFfnGate = 0;
  let iFfnUp = 0;

  const useMoreBits = (i: number, n: number): boolean =>
    i < Math.trunc(n / 8) || i >= Math.trunc(7 * n / 8) || (i - Math.trunc(n / 8)) % 3 === 2;
  const layerInfo = (i: number, n: number, name: string): [number, number] => {
    if (nExpert > 1) {
      const m = /^blk\.(-?\d+)\./.exec(name);
      if (!m) throw new Error(`Failed to determine layer for tensor ${name}`);
      const l = Number(m[1]);
      if (l < 0 || l >= n) {
        throw new Error(`Bad layer ${l} for tensor ${name}. Must be in [0, ${n})`);
      }
      return [l, n];
    }
    return [i, n];
  };

  const impl = (name: string, ne: readonly number[], c: Category, start: string): string => {
    let t = start;
    if (c === "output" || (tied && c === "token_embd")) {
      if (outputType !== undefined) t = outputType;
      else {
        const nx = ne[0];
        const qk = GGML[t].block;
        if (isFalcon(arch) || nx % qk !== 0) t = "q8_0";
        else if (t !== "q8_0") t = "q6_k";
      }
    } else if (c === "token_embd") {
      if (embdType !== undefined) t = embdType;
    } else if (isAttnV(c)) {
      if (ft === "q2_k") t = nGqa >= 4 ? "q4_k" : "q3_k";
      else if (ft === "q3_k_m") t = iAttentionWv < 2 ? "q5_k" : "q4_k";
      else if (ft === "q3_k_l") t = "q5_k";
      else if ((ft === "q4_k_m" || ft === "q5_k_m") && useMoreBits(iAttentionWv, nAttentionWv)) {
        t = "q6_k";
      } else if (ft === "q4_k_s" && iAttentionWv < 4) t = "q5_k";
      if (is70B && (t === "q3_k" || t === "q4_k")) t = "q5_k";
      if (hExpert === 8) t = "q8_0";
      iAttentionWv++;
    } else if (c === "attn_k") {
      if (hExpert === 8) t = "q8_0";
    } else if (c === "attn_q") {
      // only IQ file types change attn_q
    } else if (c === "ffn_down") {
      const [il, nl] = layerInfo(iFfnDown, nFfn, name);
      if (ft === "q2_k") t = "q3_k";
      else if (ft === "q3_k_m") {
        t = il < Math.trunc(nl / 16)
          ? "q5_k"
          : !isFalcon(arch) || useMoreBits(il, nl)
          ? "q4_k"
          : "q3_k";
      } else if (ft === "q3_k_l") t = isFalcon(arch) ? "q4_k" : "q5_k";
      else if (ft === "q4_k_m") {
        if (isFalcon(arch)) {
          t = il < Math.trunc(nl / 16) ? "q6_k" : useMoreBits(il, nl) ? "q5_k" : "q4_k";
        } else if (useMoreBits(il, nl)) t = "q6_k";
      } else if (ft === "q5_k_m" && useMoreBits(il, nl)) t = "q6_k";
      else if (ft === "q4_k_s" && !isFalcon(arch) && il < Math.trunc(nl / 8)) t = "q5_k";
      iFfnDown++;
    } else if (c === "attn_output") {
      if (!isFalcon(arch)) {
        if (hExpert === 8) {
          if (["q2_k", "q3_k_s", "q3_k_m", "q4_k_s", "q4_k_m"].includes(ft)) t = "q5_k";
        } else {
          if (ft === "q2_k") t = "q3_k";
          else if (ft === "q3_k_m") t = "q4_k";
          else if (ft === "q3_k_l") t = "q5_k";
        }
      } else if (ft === "q3_k_l") t = "q4_k";
    } else if (c === "attn_qkv") {
      // unreachable: attn_qkv is handled with attn_v above, as in llama.cpp
    } else if (c === "ffn_gate") {
      layerInfo(iFfnGate, nFfn, name);
      iFfnGate++;
    } else if (c === "ffn_up") {
      layerInfo(iFfnUp, nFfn, name);
      iFfnUp++;
    }
    return t;
  };

  const fallback = (name: string, ne: readonly number[], target: string): string => {
    const ncols = ne[0];
    const qk = GGML[target].block;
    if (ncols % qk === 0) return target;
    let r: string;
    switch (target) {
      case "iq1_s":
      case "iq1_m":
      case "iq2_xxs":
      case "iq2_xs":
      case "iq2_s":
      case "iq3_xxs":
      case "iq3_s":
      case "iq4_xs":
        r = "iq4_nl";
        break;
      case "q2_k":
      case "q3_k":
      case "tq1_0":
      case "tq2_0":
        r = "q4_0";
        break;
      case "q4_k":
        r = "q5_0";
        break;
      case "q5_k":
        r = "q5_1";
        break;
      case "q6_k":
        r = "q8_0";
        break;
      default:
        if (qk <= 32) {
          r = target;
          break;
        }
        throw new Error(`no tensor type fallback is defined for type ${target}`);
    }
    if (ncols % GGML[r].block !== 0) r = "f16";
    notices.push(
      `${name}: ncols ${ncols} not divisible by ${qk} (required for type ${target}) -> falling back to ${r}`,
    );
    return r;
  };

  const checkFits = (name: string, ne: readonly number[], type: string, what: string): void => {
    const b = GGML[type].block;
    if (ne[0] % b !== 0) {
      throw new QuantxError(
        `${what}: tensor '${name}' has rows of ${
          ne[0]
        } values, not a multiple of ${type}'s block size ${b}`,
        { code: "EINVAL" },
      );
    }
  };

  const choices: PolicyChoice[] = new Array(tensors.length);
  for (const i of order) {
    const t = tensors[i];
    const cur = t.type.toLowerCase();
    const c = cats[i];
    if (!tensorAllowsQuantization(t.name, t.ne, options.leaveOutputTensor === true)) {
      choices[i] = { type: cur, quantize: false };
      continue;
    }
    let type: string;
    let from: string | undefined;
    if (embdType !== undefined && c === "token_embd") {
      type = embdType;
      checkFits(t.name, t.ne, type, "tokenEmbeddingType");
    } else if (outputType !== undefined && c === "output") {
      type = outputType;
      checkFits(t.name, t.ne, type, "outputTensorType");
    } else {
      type = defaultType;
      if (GGML[defaultType].quantized) {
        let manual = false;
        for (const p of patterns) {
          p.pattern.lastIndex = 0;
          if (p.pattern.test(t.name)) {
            type = p.type;
            manual = true;
            break;
          }
        }
        if (!manual && !options.pure) type = impl(t.name, t.ne, c, type);
        const f = fallback(t.name, t.ne, type);
        if (f !== type) from = type;
        type = f;
      }
    }
    choices[i] = { type, quantize: type !== cur, ...(from ? { fallbackFrom: from } : {}) };
  }
  return { choices, notices };
}

/**
 * llama-quantize's tensor order (llama_model_loader's `weight_name_comparer`): tensors outside
 * blocks first, then by block number, then by name (byte order).
 */
export function compareTensorNames(a: string, b: string): number {
  const la = layerOf(a);
  const lb = layerOf(b);
  if (la !== lb) return la - lb;
  return a < b ? -1 : a > b ? 1 : 0;
}

function layerOf(name: string): number {
  const m = /^blk\.([+-]?\d+)/.exec(name);
  return m ? Number(m[1]) : -1;
}
