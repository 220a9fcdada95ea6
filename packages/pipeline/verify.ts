/**
 * `verifyWeights`: check a file's layout, decode every tensor and scan for NaN/Inf.
 * @module
 */
import { FormatError } from "@quantx/core";
import { verifyGguf } from "@quantx/gguf";
import { readChunks } from "./chunks.ts";
import { detectKind } from "./detect.ts";
import { openWeights } from "./open.ts";
import type { RunControl } from "./options.ts";
import { tensorElements, type Weights } from "./weights.ts";

/** What `quantx verify` reports. */
export interface VerifyReport {
  /** Path checked. */
  path: string;
  /** Detected format (empty when it could not be read at all). */
  format: string;
  /** True when there is no problem. */
  ok: boolean;
  /** Tensors decoded. */
  tensors: number;
  /** One line per problem. */
  problems: string[];
}

/**
 * Verify a file: every layout rule of its format, every tensor decoded, no NaN or Inf.
 *
 * @example
 * ```ts ignore
 * import { verifyWeights } from "@quantx/pipeline";
 * const r = await verifyWeights("model.gguf");
 * if (!r.ok) console.log(r.problems.join("\n"));
 * ```
 */
export async function verifyWeights(
  path: string,
  control: RunControl = {},
): Promise<VerifyReport> {
  const problems: string[] = [];
  let format = "";
  let weights: Weights | undefined;
  let decoded = 0;
  try {
    const kind = await detectKind(path);
    if (kind === "gguf") {
      const layout = await verifyGguf(path);
      problems.push(...layout.problems);
    }
    weights = await openWeights(path);
    format = weights.format;
    const bytesTotal = weights.tensors.reduce((s, t) => s + 4 * tensorElements(t), 0);
    let bytesDone = 0;
    for (const [i, t] of weights.tensors.entries()) {
      let nan = 0, inf = 0;
      try {
        for await (const chunk of readChunks(weights, t, { signal: control.signal })) {
          for (const v of chunk.data) {
            if (v !== v) nan++;
            else if (v === Infinity || v === -Infinity) inf++;
          }
          bytesDone += 4 * chunk.data.length;
          control.onProgress?.({
            phase: "verify",
            tensorIndex: i,
            tensorCount: weights.tensors.length,
            tensorName: t.name,
            bytesDone,
            bytesTotal,
          });
        }
        decoded++;
      } catch (e) {
        if (control.signal?.aborted) throw e;
        problems.push(`${t.name}: cannot decode: ${(e as Error).message}`);
        continue;
      }
      if (nan) problems.push(`${t.name}: ${nan} NaN value${nan === 1 ? "" : "s"}`);
      if (inf) problems.push(`${t.name}: ${inf} infinite value${inf === 1 ? "" : "s"}`);
    }
  } catch (e) {
    if (control.signal?.aborted) throw e;
    if (!(e instanceof FormatError)) throw e;
    problems.push(e.message);
  } finally {
    await weights?.close();
  }
  return { path, format, ok: problems.length === 0, tensors: decoded, problems };
}
