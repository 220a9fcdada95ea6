/**
 * `openWeights`: open any supported input, detecting its format by content.
 * @module
 */
import { detectKind } from "./detect.ts";
import { openGgufWeights } from "./adapters/gguf.ts";
import { openSafetensorsWeights } from "./adapters/safetensors.ts";
import { openQnatWeights } from "./adapters/qnat.ts";
import type { Weights } from "./weights.ts";

/**
 * Open a `.gguf`, `.safetensors`, `*.safetensors.index.json`, Hugging Face folder, bitsandbytes
 * checkpoint or `.qnat` as {@link Weights}.
 *
 * @example
 * ```ts ignore
 * import { openWeights } from "@quantx/pipeline";
 * const w = await openWeights("model.gguf");
 * console.log(w.format, w.tensors.length);
 * await w.close();
 * ```
 */
export async function openWeights(path: string): Promise<Weights> {
  const kind = await detectKind(path);
  switch (kind) {
    case "gguf":
      return await openGgufWeights(path);
    case "safetensors":
    case "safetensors-index":
    case "hf-folder":
      return await openSafetensorsWeights(path);
    case "qnat":
      return await openQnatWeights(path);
  }
}
