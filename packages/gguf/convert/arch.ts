/**
 * The Hugging Face architectures QuantX converts to GGUF, as llama.cpp's `convert_hf_to_gguf.py`
 * handles them: the GGUF architecture name, which tensors exist, which get the q/k row permutation,
 * and the `<arch>.*` metadata keys written for each.
 * @module
 */
import { QuantxError } from "@quantx/core";

/** How one Hugging Face architecture converts. */
export interface ArchSpec {
  /** `architectures[0]` in config.json. */
  hfArch: string;
  /** `general.architecture` in GGUF. */
  ggufArch: string;
  /**
   * q_proj / k_proj rows (weights and biases) are permuted for ggml's RoPE layout
   * (`LlamaModel.permute`, convert_hf_to_gguf's `undo_permute`).
   */
  permuteQK: boolean;
  /** GGUF tensor base names (without `.weight`/`.bias`; `{bid}` for the block) this arch has. */
  tensors: readonly string[];
  /** `<arch>.vocab_size` and `<arch>.rope.dimension_count` are written (LlamaModel). */
  llamaKeys: boolean;
  /** The converter class in convert_hf_to_gguf (for messages). */
  converter: string;
}

const LLAMA_TENSORS = [
  "token_embd",
  "output_norm",
  "output",
  "rope_freqs",
  "blk.{bid}.attn_norm",
  "blk.{bid}.attn_q",
  "blk.{bid}.attn_k",
  "blk.{bid}.attn_v",
  "blk.{bid}.attn_output",
  "blk.{bid}.ffn_norm",
  "blk.{bid}.ffn_gate",
  "blk.{bid}.ffn_down",
  "blk.{bid}.ffn_up",
];

const QWEN3_TENSORS = [...LLAMA_TENSORS, "blk.{bid}.attn_q_norm", "blk.{bid}.attn_k_norm"];

/** The supported architectures, keyed by `architectures[0]`. */
export const ARCHITECTURES: Readonly<Record<string, ArchSpec>> = {
  LlamaForCausalLM: {
    hfArch: "LlamaForCausalLM",
    ggufArch: "llama",
    permuteQK: true,
    tensors: LLAMA_TENSORS,
    llamaKeys: true,
    converter: "LlamaModel",
  },
  MistralForCausalLM: {
    hfArch: "MistralForCausalLM",
    ggufArch: "llama",
    permuteQK: true,
    tensors: LLAMA_TENSORS,
    llamaKeys: true,
    converter: "LlamaModel",
  },
  Qwen2ForCausalLM: {
    hfArch: "Qwen2ForCausalLM",
    ggufArch: "qwen2",
    permuteQK: false,
    tensors: LLAMA_TENSORS,
    llamaKeys: false,
    converter: "Qwen2Model",
  },
  Qwen3ForCausalLM: {
    hfArch: "Qwen3ForCausalLM",
    ggufArch: "qwen3",
    permuteQK: false,
    tensors: QWEN3_TENSORS,
    llamaKeys: false,
    converter: "Qwen3Model",
  },
};

/** Names of the supported Hugging Face architectures. */
export const SUPPORTED_ARCHITECTURES: readonly string[] = Object.keys(ARCHITECTURES);

/**
 * The architecture of a config.json (`architectures[0]`, as convert_hf_to_gguf picks it). Throws
 * a {@link QuantxError} (code `EUNSUPPORTED`) naming it and the supported ones otherwise.
 */
export function archOf(config: Record<string, unknown>): ArchSpec {
  const list = config.architectures;
  const name = Array.isArray(list) && typeof list[0] === "string" ? list[0] : undefined;
  const spec = name === undefined ? undefined : ARCHITECTURES[name];
  if (!spec) {
    const what = name === undefined
      ? `config.json has no 'architectures' entry${
        typeof config.model_type === "string" ? ` (model_type '${config.model_type}')` : ""
      }`
      : `architecture '${name}' is not supported for GGUF conversion`;
    throw new QuantxError(`${what}; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`, {
      code: "EUNSUPPORTED",
    });
  }
  return spec;
}

/** Model hyperparameters read from config.json the way convert_hf_to_gguf reads them. */
export interface HfHparams {
  /** All of config.json, with `text_config` merged into the top level. */
  raw: Record<string, unknown>;
  /** `num_hidden_layers` (or n_layers, n_layer, num_layers). */
  nLayer: number;
  /** `num_attention_heads`. */
  nHead: number;
  /** `num_key_value_heads` (defaults to nHead for the permutation and the policy). */
  nHeadKv: number;
  /** `num_key_value_heads` as given (undefined when absent). */
  nHeadKvGiven?: number;
  /** `hidden_size`. */
  nEmbd: number;
  /** `head_dim` when given and not null. */
  headDim?: number;
}

/**
 * convert_hf_to_gguf's `find_hparam`: the value of the first key present in `hp` (a key whose
 * value is null counts as present, as in Python's `in`).
 */
export function findHparam(hp: Record<string, unknown>, keys: readonly string[]): unknown {
  for (const k of keys) if (k in hp) return hp[k];
  return undefined;
}

function positiveInt(hp: Record<string, unknown>, keys: readonly string[]): number {
  const v = findHparam(hp, keys);
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new QuantxError(
      `config.json: ${keys[0]} must be a positive integer, got ${JSON.stringify(v)}`,
      { code: "EINVAL" },
    );
  }
  return v;
}

/** Read the hyperparameters the conversion needs; throws when one is missing or invalid. */
export function readHparams(config: Record<string, unknown>): HfHparams {
  const tc = config.text_config;
  const raw: Record<string, unknown> = tc !== null && typeof tc === "object"
    ? { ...config, ...(tc as Record<string, unknown>) }
    : { ...config };
  const nLayer = positiveInt(raw, ["n_layers", "num_hidden_layers", "n_layer", "num_layers"]);
  const nHead = positiveInt(raw, ["num_attention_heads", "n_head", "n_heads"]);
  const kv = findHparam(raw, ["num_key_value_heads", "n_kv_heads"]);
  const nHeadKvGiven = typeof kv === "number" && Number.isInteger(kv) && kv > 0 ? kv : undefined;
  const nEmbd = positiveInt(raw, ["hidden_size", "n_embd", "dim"]);
  const hd = raw.head_dim;
  const headDim = typeof hd === "number" && Number.isInteger(hd) && hd > 0 ? hd : undefined;
  return { raw, nLayer, nHead, nHeadKv: nHeadKvGiven ?? nHead, nHeadKvGiven, nEmbd, headDim };
}
