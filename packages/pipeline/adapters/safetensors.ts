/**
 * safetensors files, sharded indexes and Hugging Face folders as {@link Weights}.
 * @module
 */
import { dirname } from "node:path";
import { openCheckpoint } from "@quantx/safetensors";
import type { Weights } from "../weights.ts";

/** Open a `.safetensors` file, a `*.safetensors.index.json` or a Hugging Face folder. */
export async function openSafetensorsWeights(path: string): Promise<Weights> {
  const ckpt = await openCheckpoint(path);
  const config = ckpt.config;
  const archs = config?.architectures;
  return {
    format: "safetensors",
    path,
    tensors: ckpt.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      dtype: t.dtype.toLowerCase(),
      byteLength: t.byteLength,
    })),
    architecture: Array.isArray(archs) && typeof archs[0] === "string" ? archs[0] : undefined,
    config,
    folder: ckpt.dir ?? (config ? dirname(path) : undefined),
    metadata: { ...ckpt.metadata },
    details: {},
    readF32: (name, start, count) => ckpt.readF32(name, start, count),
    close: () => ckpt.close(),
  };
}
