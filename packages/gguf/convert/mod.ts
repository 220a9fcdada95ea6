/**
 * Hugging Face -> GGUF conversion (convert_hf_to_gguf) and llama-quantize's type policy, as plans:
 * names, shapes, types and metadata are computed up front, tensor data is produced by the caller
 * (read, float32, {@link permuteRows}, quantize), so a pipeline can stream.
 *
 * @example
 * ```ts
 * import { planHfToGguf } from "@quantx/gguf";
 * const plan = planHfToGguf({
 *   config: {
 *     architectures: ["LlamaForCausalLM"], hidden_size: 256, intermediate_size: 768,
 *     num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 1, vocab_size: 32000,
 *     rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048,
 *   },
 *   tensors: [
 *     { name: "model.embed_tokens.weight", shape: [32000, 256], dtype: "BF16" },
 *     { name: "model.layers.0.self_attn.q_proj.weight", shape: [256, 256], dtype: "BF16" },
 *     { name: "model.norm.weight", shape: [256], dtype: "BF16" },
 *   ],
 * }, { fileType: "q4_k_m" });
 * console.log(plan.tensors.map((t) => `${t.name} ${t.type}`));
 * // ["output_norm.weight f32", "token_embd.weight q6_k", "blk.0.attn_q.weight q4_k"]
 * ```
 * @module
 */
export * from "./arch.ts";
export * from "./names.ts";
export * from "./permute.ts";
export * from "./policy.ts";
export * from "./tokenizer.ts";
export * from "./plan.ts";
