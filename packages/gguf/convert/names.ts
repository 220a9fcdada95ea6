/**
 * Hugging Face -> GGUF tensor names (gguf-py's `TensorNameMap` for the supported architectures).
 * @module
 */
import { QuantxError } from "@quantx/core";
import type { ArchSpec } from "./arch.ts";

/** Result of mapping one Hugging Face tensor name. */
export interface MappedName {
  /** GGUF name, e.g. `blk.3.attn_q.weight`. */
  name: string;
  /** Block number, when the tensor belongs to one. */
  bid?: number;
  /** `q` or `k` when the rows get the RoPE permutation (with the arch's `permuteQK`). */
  permute?: "q" | "k";
}

/** Per-block HF suffixes (after `model.layers.N.`) and their GGUF base names. */
const BLOCK_MAP: Record<string, string> = {
  "input_layernorm": "attn_norm",
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "self_attn.q_norm": "attn_q_norm",
  "self_attn.k_norm": "attn_k_norm",
  "post_attention_layernorm": "ffn_norm",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};

const GLOBAL_MAP: Record<string, string> = {
  "model.embed_tokens": "token_embd",
  "lm_head": "output",
  "model.norm": "output_norm",
};

/** Tensor name endings convert_hf_to_gguf drops ("we don't need these"). */
const DROPPED = [".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq"];

/**
 * Map a Hugging Face tensor name to its GGUF name for `arch`. Returns `null` for tensors
 * convert_hf_to_gguf drops (`rotary_emb.inv_freq`, ...). Throws a {@link QuantxError} (code
 * `EUNSUPPORTED`) for a tensor the architecture has no GGUF name for, as the converter does
 * ("Can not map tensor").
 */
export function mapTensorName(arch: ArchSpec, hfName: string): MappedName | null {
  if (DROPPED.some((d) => hfName.endsWith(d))) return null;
  let name = hfName;
  if (name.includes("language_model.")) name = name.replace("language_model.", "");
  let suffix: string;
  let stem: string;
  if (name.endsWith(".weight")) {
    suffix = ".weight";
    stem = name.slice(0, -7);
  } else if (name.endsWith(".bias")) {
    suffix = ".bias";
    stem = name.slice(0, -5);
  } else {
    throw cannotMap(arch, hfName);
  }
  let base: string | undefined;
  let bid: number | undefined;
  let template: string | undefined;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(stem);
  if (m) {
    bid = Number(m[1]);
    base = BLOCK_MAP[m[2]];
    if (base !== undefined) template = `blk.{bid}.${base}`;
  } else {
    base = GLOBAL_MAP[stem];
    template = base;
  }
  if (template === undefined || !arch.tensors.includes(template)) throw cannotMap(arch, hfName);
  const gguf = (bid === undefined ? template : template.replace("{bid}", String(bid))) + suffix;
  const out: MappedName = { name: gguf };
  if (bid !== undefined) out.bid = bid;
  if (arch.permuteQK) {
    if (base === "attn_q") out.permute = "q";
    else if (base === "attn_k") out.permute = "k";
  }
  return out;
}

function cannotMap(arch: ArchSpec, hfName: string): QuantxError {
  return new QuantxError(
    `Can not map tensor '${hfName}' to a GGUF name for ${arch.hfArch} (GGUF architecture '${arch.ggufArch}')`,
    { code: "EUNSUPPORTED" },
  );
}
