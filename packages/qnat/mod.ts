/**
 * `@quantx/qnat`: the QNAT native QLoRA container (origin: qlora-rs `export_native`). Streaming
 * writer with all offsets computed up front, lazy reader that checks every offset and length, NF4
 * codes in low-nibble-first order, optional double-quantized scales and zero points, unquantized
 * float32 tensors (block size 0), and reading of qlora-rs 1.x files despite their wrong offsets.
 *
 * @example
 * ```ts
 * import { bytesSource, memorySink } from "@quantx/core";
 * import { openQnat, writeQnat } from "@quantx/qnat";
 *
 * const sink = memorySink("demo.qnat");
 * await writeQnat(sink, { modelName: "demo", modelType: "llama", computeDtype: "bf16" }, [
 *   { name: "layer.weight", shape: [2, 64], data: new Float32Array(128).fill(0.5) },
 *   { name: "norm.weight", shape: [64], data: new Float32Array(64).fill(1), quantize: false },
 * ]);
 * const file = await openQnat(bytesSource(sink.bytes(), "demo.qnat"));
 * for (const t of file.tensors) console.log(t.name, t.dtype, t.shape, t.blockSize);
 * console.log((await file.readF32("layer.weight"))[0]); // 0.5
 * ```
 * @module
 */
export * from "./format.ts";
export * from "./scales.ts";
export * from "./encode.ts";
export * from "./decode.ts";
export * from "./write.ts";
export * from "./read.ts";
