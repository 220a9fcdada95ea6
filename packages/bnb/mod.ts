/**
 * `@quantx/bnb`: bitsandbytes 4-bit (NF4 / FP4) safetensors checkpoints, written exactly as
 * transformers' `save_pretrained` writes a bitsandbytes 4-bit model (and loads back), and read
 * back to float32.
 *
 * - {@link planBnb}: which tensors become 4-bit (Linear weights, as `replace_with_bnb_linear`),
 *   each parameter's companion tensors, shards, `quantization_config`.
 * - {@link BnbWriter} / {@link writeBnbCheckpoint}: streaming writer (one shard per sink, or a
 *   whole output folder with index and config.json).
 * - {@link openBnb}: read any bitsandbytes 4-bit checkpoint (NF4 or FP4, double-quantized or not),
 *   checked tensor by tensor, decoded exactly as bitsandbytes' kernels decode.
 * - {@link quantStateJson} / {@link parseQuantState}: the packed `quant_state` JSON.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { openSafetensors } from "@quantx/safetensors";
 * import { BnbWriter, openBnb, planBnb } from "@quantx/bnb";
 *
 * const w = new Float32Array(64 * 32).map((_, i) => Math.sin(i));
 * const source = {
 *   readF32: (_: string, start: number, count: number) => Promise.resolve(w.slice(start, start + count)),
 *   read: (_: string, offset: number, length: number) =>
 *     Promise.resolve(new Uint8Array(w.buffer).slice(offset, offset + length)),
 * };
 * const plan = planBnb([{ name: "model.layers.0.mlp.up_proj.weight", shape: [64, 32], dtype: "F32" }], {
 *   quantType: "nf4",
 *   doubleQuant: true,
 * });
 * const sink = memorySink("model.safetensors");
 * const writer = new BnbWriter(sink, plan.shards[0], plan);
 * await writer.write(source);
 *
 * const bnb = await openBnb(await openSafetensors(sink.bytes(), "model.safetensors"));
 * console.log(bnb.details); // { quant_type: "nf4", blocksize: 64, double_quant: true, quantized_params: 1 }
 * const back = await bnb.readF32("model.layers.0.mlp.up_proj.weight");
 * console.log(back.length); // 2048
 * await bnb.close();
 * ```
 * @module
 */
export * from "./quant_state.ts";
export * from "./plan.ts";
export * from "./write.ts";
export * from "./read.ts";
