/**
 * safetensors files, sharded indexes and Hugging Face folders as {@link Weights}; bitsandbytes
 * 4-bit checkpoints among them are read through `@quantx/bnb` (weights decoded to float32).
 * @module
 */
import { dirname } from "node:path";
import { isBnbCheckpoint, openBnb } from "@quantx/bnb";
import { type Checkpoint, openCheckpoint } from "@quantx/safetensors";
import { locateValues, type Weights } from "../weights.ts";

/** {@link Weights} that still hold their checkpoint (raw reads, side files). */
export interface CheckpointWeights extends Weights {
  /** The opened checkpoint. */
  checkpoint: Checkpoint;
}

/** Open a `.safetensors` file, a `*.safetensors.index.json` or a Hugging Face folder. */
export async function openSafetensorsWeights(path: string): Promise<CheckpointWeights> {
  const ckpt = await openCheckpoint(path);
  const config = ckpt.config;
  const archs = config?.architectures;
  const common = {
    path,
    checkpoint: ckpt,
    architecture: Array.isArray(archs) && typeof archs[0] === "string" ? archs[0] : undefined,
    config,
    folder: ckpt.dir ?? (config ? dirname(path) : undefined),
    metadata: { ...ckpt.metadata },
  };
  if (isBnbCheckpoint(ckpt)) {
    let bnb;
    try {
      bnb = await openBnb(ckpt);
    } catch (e) {
      await ckpt.close();
      throw e;
    }
    return {
      ...common,
      format: "bnb",
      tensors: bnb.tensors.map((t) => ({
        name: t.name,
        shape: [...t.shape],
        dtype: t.dtype.toLowerCase(),
        byteLength: t.byteLength,
      })),
      details: { ...bnb.details },
      readF32: (name, start, count) => bnb.readF32(name, start, count),
      close: () => bnb.close(),
    };
  }
  return {
    ...common,
    format: "safetensors",
    tensors: ckpt.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      dtype: t.dtype.toLowerCase(),
      byteLength: t.byteLength,
    })),
    details: {},
    readF32: (name, start, count, into) => ckpt.readF32(name, start, count, into),
    locate(name, start, count) {
      const t = ckpt.tensor(name);
      return t && locateValues({ ...t, path: t.file }, start, count);
    },
    close: () => ckpt.close(),
  };
}
