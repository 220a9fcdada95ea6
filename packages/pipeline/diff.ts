/**
 * `diffWeights`: per-tensor error between two files with matching tensors, streamed chunk by
 * chunk.
 * @module
 */
import { readChunks } from "./chunks.ts";
import { openWeights } from "./open.ts";
import type { RunControl } from "./options.ts";
import { ErrorStats, type ErrorSummary } from "./stats.ts";
import { UserError } from "./user_error.ts";
import { tensorElements, type Weights } from "./weights.ts";

/** Error of one tensor of `b` against the same tensor of `a`. */
export interface TensorDiff extends ErrorSummary {
  /** Tensor name. */
  name: string;
}

/** What `quantx diff` reports. */
export interface DiffReport {
  /** First file (the reference). */
  a: string;
  /** Second file. */
  b: string;
  /** Per-tensor errors, in `a`'s order. */
  tensors: TensorDiff[];
  /** Over all compared tensors. */
  total: ErrorSummary;
  /** Tensors only `a` has. */
  onlyInA: string[];
  /** Tensors only `b` has. */
  onlyInB: string[];
}

/**
 * Compare two weight files tensor by tensor (matched by name; shapes must agree).
 *
 * @example
 * ```ts ignore
 * import { diffWeights } from "@quantx/pipeline";
 * const d = await diffWeights("model.safetensors", "model-q8_0.gguf");
 * console.log(d.total.snrDb);
 * ```
 */
export async function diffWeights(
  pathA: string,
  pathB: string,
  control: RunControl = {},
): Promise<DiffReport> {
  const a = await openWeights(pathA);
  let b: Weights | undefined;
  try {
    b = await openWeights(pathB);
    const inB = new Map(b.tensors.map((t) => [t.name, t]));
    const common = a.tensors.filter((t) => inB.has(t.name));
    if (common.length === 0) {
      throw new UserError(`${pathA} and ${pathB} have no tensor names in common`);
    }
    const inA = new Set(a.tensors.map((t) => t.name));
    const total = new ErrorStats();
    const tensors: TensorDiff[] = [];
    const bytesTotal = common.reduce((s, t) => s + 4 * tensorElements(t), 0);
    let bytesDone = 0;
    for (const [i, ta] of common.entries()) {
      const tb = inB.get(ta.name)!;
      if (ta.shape.join(",") !== tb.shape.join(",")) {
        throw new UserError(
          `tensor ${ta.name}: shape [${ta.shape}] in ${pathA} but [${tb.shape}] in ${pathB}`,
        );
      }
      const stats = new ErrorStats();
      const chunksB = readChunks(b, tb, { signal: control.signal });
      for await (const ca of readChunks(a, ta, { signal: control.signal })) {
        const cb = await chunksB.next();
        if (cb.done) throw new Error(`internal: ${ta.name} chunks out of step`);
        stats.add(ca.data, cb.value.data);
        bytesDone += 4 * ca.data.length;
        control.onProgress?.({
          phase: "diff",
          tensorIndex: i,
          tensorCount: common.length,
          tensorName: ta.name,
          bytesDone,
          bytesTotal,
        });
      }
      total.merge(stats);
      tensors.push({ name: ta.name, ...stats.summary() });
    }
    return {
      a: pathA,
      b: pathB,
      tensors,
      total: total.summary(),
      onlyInA: a.tensors.filter((t) => !inB.has(t.name)).map((t) => t.name),
      onlyInB: b.tensors.filter((t) => !inA.has(t.name)).map((t) => t.name),
    };
  } finally {
    await a.close();
    await b?.close();
  }
}
