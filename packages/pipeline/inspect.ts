/**
 * `inspectWeights`: what a file holds, without decoding any tensor.
 * @module
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { openWeights } from "./open.ts";
import { tensorElements } from "./weights.ts";

/** One tensor in an inspect report. */
export interface InspectTensor {
  /** Name. */
  name: string;
  /** Row-major shape. */
  shape: number[];
  /** Storage type. */
  dtype: string;
  /** Stored bytes. */
  bytes: number;
}

/** What `quantx inspect` prints. */
export interface InspectReport {
  /** Path as given. */
  path: string;
  /** Detected format. */
  format: string;
  /** Architecture, when known. */
  architecture?: string;
  /** Total number of weights. */
  parameters: number;
  /** Size on disk (all shards of a checkpoint). */
  fileSize: number;
  /** Stored tensor bits per weight. */
  bitsPerWeight: number;
  /** Tensors per storage type. */
  typeCounts: Record<string, number>;
  /** Format-specific facts. */
  details: Record<string, string | number | boolean>;
  /** Metadata (long arrays summarized). */
  metadata: Record<string, unknown>;
  /** Every tensor. */
  tensors: InspectTensor[];
}

/** Summarize a metadata value for display: arrays over 16 items become a short description. */
export function summarizeValue(v: unknown): unknown {
  if (Array.isArray(v) && v.length > 16) {
    const kind = typeof v[0] === "string" ? "string" : typeof v[0] === "number" ? "number" : "item";
    return `[${v.length} ${kind}s: ${JSON.stringify(v.slice(0, 4)).slice(1, -1)}, ...]`;
  }
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string" && v.length > 200) return v.slice(0, 200) + `... (${v.length} chars)`;
  return v;
}

async function sizeOnDisk(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(path)) {
    if (!/\.(safetensors|json|gguf|qnat|model)$/.test(name)) continue;
    const s = await stat(join(path, name));
    if (s.isFile()) total += s.size;
  }
  return total;
}

/**
 * Inspect a weight file or checkpoint folder.
 *
 * @example
 * ```ts ignore
 * import { inspectWeights } from "@quantx/pipeline";
 * const r = await inspectWeights("model.gguf");
 * console.log(r.format, r.parameters, r.bitsPerWeight.toFixed(2));
 * ```
 */
export async function inspectWeights(path: string): Promise<InspectReport> {
  const w = await openWeights(path);
  try {
    const typeCounts: Record<string, number> = {};
    let parameters = 0, bytes = 0;
    for (const t of w.tensors) {
      typeCounts[t.dtype] = (typeCounts[t.dtype] ?? 0) + 1;
      parameters += tensorElements(t);
      bytes += t.byteLength;
    }
    const metadata: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(w.metadata)) metadata[k] = summarizeValue(v);
    return {
      path,
      format: w.format,
      architecture: w.architecture,
      parameters,
      fileSize: await sizeOnDisk(path),
      bitsPerWeight: parameters ? (8 * bytes) / parameters : 0,
      typeCounts,
      details: w.details,
      metadata,
      tensors: w.tensors.map((t) => ({
        name: t.name,
        shape: t.shape,
        dtype: t.dtype,
        bytes: t.byteLength,
      })),
    };
  } finally {
    await w.close();
  }
}
