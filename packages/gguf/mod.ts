/**
 * `@quantx/gguf`: the GGUF container. Read v2 and v3 files of either byte order with typed
 * metadata and lazy tensor reads, write v3 files as a stream, and verify files against the rules of
 * llama.cpp's reader.
 *
 * @example
 * ```ts
 * import { bytesSource, memorySink } from "@quantx/core";
 * import { GgufValueType, openGguf, verifyGguf, writeGguf } from "@quantx/gguf";
 *
 * const sink = memorySink("demo.gguf");
 * await writeGguf(sink, {
 *   metadata: { "general.architecture": { type: GgufValueType.STRING, value: "llama" } },
 *   tensors: [{ name: "w", shape: [4], type: "f32", data: new Uint8Array(16) }],
 * });
 * const file = await openGguf(bytesSource(sink.bytes(), "demo.gguf"));
 * console.log(file.tensors.map((t) => `${t.name} ${t.typeName} ${t.shape}`)); // ["w f32 4"]
 * console.log((await verifyGguf(bytesSource(sink.bytes(), "demo.gguf"))).ok); // true
 * ```
 * @module
 */
export * from "./metadata.ts";
export * from "./read.ts";
export * from "./write.ts";
export * from "./verify.ts";
export * from "./convert/mod.ts";
