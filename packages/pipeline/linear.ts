/**
 * Which tensors 4-bit formats (bitsandbytes, QNAT) quantize: the weights of Linear layers, as
 * transformers' `replace_with_bnb_linear` does. Embeddings, norms, biases and `lm_head` stay in
 * the model dtype.
 * @module
 */

/** Module names never quantized to 4 bits (transformers keeps `lm_head` in full precision). */
export const DEFAULT_SKIP_MODULES: readonly string[] = ["lm_head"];

/**
 * True for a Linear layer's weight: 2-D, named `*.weight`, not an embedding, norm or a skipped
 * module (`skip` holds module names matched as whole dot-separated components).
 */
export function isLinearWeight(
  name: string,
  shape: readonly number[],
  skip: readonly string[] = DEFAULT_SKIP_MODULES,
): boolean {
  if (shape.length !== 2 || !name.endsWith(".weight")) return false;
  const module = name.slice(0, -".weight".length);
  const parts = module.split(".");
  if (parts.some((p) => /embed|^wte$|^wpe$|norm$|^ln_/.test(p))) return false;
  return !skip.some((s) => module === s || module.endsWith("." + s) || parts.includes(s));
}
