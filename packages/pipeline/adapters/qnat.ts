/**
 * QNAT files as {@link Weights}.
 * @module
 */
import { openQnat } from "@quantx/qnat";
import type { Weights } from "../weights.ts";

/** Open a `.qnat` file; NF4 tensors decode to float32 on read. */
export async function openQnatWeights(path: string): Promise<Weights> {
  const file = await openQnat(path);
  const { modelName, modelType, computeDtype } = file.metadata;
  return {
    format: "qnat",
    path,
    tensors: file.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      dtype: t.dtype,
      byteLength: t.byteLength,
    })),
    architecture: modelType || undefined,
    metadata: { modelName, modelType, computeDtype },
    details: {
      version: file.header.version,
      flags: file.header.flags,
      "written by qlora-rs 1.x": file.header.legacy,
    },
    readF32: (name, start, count) => file.readF32(name, start, count),
    close: () => file.close(),
  };
}
