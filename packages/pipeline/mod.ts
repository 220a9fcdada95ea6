/**
 * `@quantx/pipeline`: the jobs behind every face of QuantX. Open any weight file, plan, quantize
 * tensor by tensor with bounded memory, and inspect, diff, verify and dequantize.
 *
 * @example
 * ```ts ignore
 * import { inspectWeights, quantizeModel } from "@quantx/pipeline";
 * const result = await quantizeModel("./my-hf-model", "model-q4_k_m.gguf", { type: "q4_k_m" }, {
 *   onProgress: (e) => console.log(`${e.tensorIndex + 1}/${e.tensorCount} ${e.tensorName}`),
 * });
 * console.log(result.bitsPerWeight, result.error.snrDb);
 * console.log((await inspectWeights("model-q4_k_m.gguf")).typeCounts);
 * ```
 * @module
 */
export * from "./options.ts";
export * from "./weights.ts";
export * from "./stats.ts";
export * from "./user_error.ts";
export { type DetectedKind, detectKind } from "./detect.ts";
export { openWeights } from "./open.ts";
export { outputFormat, planQuantize, quantizeModel } from "./quantize.ts";
export { type InspectReport, type InspectTensor, inspectWeights } from "./inspect.ts";
export { type DiffReport, diffWeights, type TensorDiff } from "./diff.ts";
export { type VerifyReport, verifyWeights } from "./verify.ts";
export { dequantizeModel, type DequantizeOptions, type DequantizeResult } from "./dequantize.ts";
export { modelCard } from "./card.ts";
export { GGUF_FILE_TYPES, typeNameProblems, TYPES_BY_FORMAT } from "./type_names.ts";
export { GGUF_TENSOR_TYPES } from "./gguf_plan.ts";
