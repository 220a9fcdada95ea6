/**
 * `@quantx/safetensors`: read and write safetensors files, sharded checkpoints
 * (`model.safetensors.index.json`) and Hugging Face checkpoint folders.
 *
 * - {@link openSafetensors}: validate a file's header (every rule of the format: header size,
 *   JSON, dtypes, shapes, data offsets inside the file, no overlaps, metadata strings), then read
 *   tensors lazily, as raw bytes or as float32 in chunks (every dtype: floats, ints, bool, FP8,
 *   FP4). Bad input is a `FormatError` naming the file and the byte offset.
 * - {@link openCheckpoint}: one file, an index, or a folder, as one list of tensors, with
 *   `config.json` and the tokenizer files listed.
 * - {@link SafetensorsWriter} / {@link writeSafetensors}: streaming writer, header first, data in
 *   chunks; {@link writeShardedIndex} and {@link planShards} for sharded output.
 * - {@link toF32} / {@link fromF32}: dtype conversions.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { fromF32, openSafetensors, writeSafetensors } from "@quantx/safetensors";
 *
 * const sink = memorySink("model.safetensors");
 * await writeSafetensors(sink, [
 *   { name: "w", dtype: "BF16", shape: [2, 2], data: fromF32("BF16", new Float32Array([1, 2, 3, 4])) },
 * ], { format: "pt" });
 *
 * const file = await openSafetensors(sink.bytes(), "model.safetensors");
 * console.log(file.tensors.map((t) => `${t.name} ${t.dtype} [${t.shape}]`)); // ["w BF16 [2,2]"]
 * console.log(await file.readF32("w", 2, 2)); // Float32Array [3, 4]
 * console.log(file.metadata); // { format: "pt" }
 * await file.close();
 * ```
 * @module
 */
export * from "./dtypes.ts";
export * from "./read.ts";
export * from "./checkpoint.ts";
export * from "./write.ts";
