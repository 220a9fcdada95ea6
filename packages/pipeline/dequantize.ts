/**
 * `dequantizeModel`: any supported input to a plain safetensors file (f32, f16 or bf16), streamed.
 * @module
 */
import { stat } from "node:fs/promises";
import { createFileSink } from "@quantx/core";
import { fromF32, SafetensorsWriter } from "@quantx/safetensors";
import { readChunks } from "./chunks.ts";
import { openWeights } from "./open.ts";
import type { RunControl } from "./options.ts";
import { checkOutput } from "./output.ts";
import { tensorElements } from "./weights.ts";

/** Options of {@link dequantizeModel}. */
export interface DequantizeOptions {
  /** Output element type (default f32). */
  dtype?: "f32" | "f16" | "bf16";
  /** Replace an existing output. */
  force?: boolean;
}

/** What a dequantize run wrote. */
export interface DequantizeResult {
  /** Output path. */
  output: string;
  /** File size in bytes. */
  bytes: number;
  /** Number of tensors. */
  tensors: number;
  /** Output dtype. */
  dtype: string;
}

/**
 * Decode every tensor of `input` and write them to a safetensors file, names and row-major shapes
 * kept.
 *
 * @example
 * ```ts ignore
 * import { dequantizeModel } from "@quantx/pipeline";
 * await dequantizeModel("model-q4_0.gguf", "model.safetensors", { dtype: "f16" });
 * ```
 */
export async function dequantizeModel(
  input: string,
  output: string,
  options: DequantizeOptions = {},
  control: RunControl = {},
): Promise<DequantizeResult> {
  const dtype = options.dtype ?? "f32";
  await checkOutput(input, output, options.force === true);
  const weights = await openWeights(input);
  try {
    const sink = await createFileSink(output, {
      overwrite: options.force === true,
      signal: control.signal,
    });
    try {
      const writer = new SafetensorsWriter(
        sink,
        weights.tensors.map((t) => ({ name: t.name, dtype: dtype.toUpperCase(), shape: t.shape })),
        { format: "pt" },
      );
      await writer.writeHeader();
      const bytesTotal = weights.tensors.reduce((s, t) => s + 4 * tensorElements(t), 0);
      let bytesDone = 0;
      for (const [i, t] of weights.tensors.entries()) {
        for await (const chunk of readChunks(weights, t, { signal: control.signal })) {
          await writer.write(fromF32(dtype.toUpperCase(), chunk.data));
          bytesDone += 4 * chunk.data.length;
          control.onProgress?.({
            phase: "dequantize",
            tensorIndex: i,
            tensorCount: weights.tensors.length,
            tensorName: t.name,
            bytesDone,
            bytesTotal,
          });
        }
      }
      await writer.finish();
    } catch (e) {
      await sink.abort();
      throw e;
    }
    return {
      output,
      bytes: (await stat(output)).size,
      tensors: weights.tensors.length,
      dtype,
    };
  } finally {
    await weights.close();
  }
}
