/**
 * The QNAT output job: Linear weights as NF4 (block size 64), everything else as float32, one
 * `.qnat` file written as a stream.
 * @module
 */
import type { ByteSink } from "@quantx/core";
import {
  decodeQnatNf4,
  QNAT_DEFAULT_BLOCK_SIZE,
  QNAT_FLAG_DOUBLE_QUANT,
  qnatBlockCount,
  type QnatComputeDtype,
  qnatDataLayout,
  type QnatTensorPlan,
  QnatWriter,
} from "@quantx/qnat";
import { readChunks } from "./chunks.ts";
import { isBnbLinearWeight } from "@quantx/bnb";
import type { Plan, PlanEntry, QuantizeOptions, RunControl } from "./options.ts";
import { ErrorStats } from "./stats.ts";
import { UserError } from "./user_error.ts";
import { tensorElements, type Weights } from "./weights.ts";

/** A plan for a QNAT file. */
export interface QnatPlan extends Plan {
  /** Tensors as the writer takes them. */
  qnat: QnatTensorPlan[];
  /** File-level flags. */
  flags: number;
  /** Compute dtype recorded in the metadata. */
  computeDtype: QnatComputeDtype;
}

/**
 * Plan a QNAT file: Linear weights NF4 (block 64; the same rule as bitsandbytes), the rest
 * float32 (block size 0).
 */
export function planQnat(weights: Weights, output: string, options: QuantizeOptions): QnatPlan {
  const type = (options.type ?? "nf4").toLowerCase();
  if (type !== "nf4") {
    throw new UserError(`--to qnat stores NF4 only; --type ${options.type} is not available`);
  }
  const flags = options.doubleQuant ? QNAT_FLAG_DOUBLE_QUANT : 0;
  const entries: PlanEntry[] = [];
  const qnat: QnatTensorPlan[] = [];
  for (const t of weights.tensors) {
    const n = tensorElements(t);
    const quantize = isBnbLinearWeight({ name: t.name, shape: t.shape, dtype: "F32" }) &&
      n % QNAT_DEFAULT_BLOCK_SIZE === 0;
    const blockSize = quantize ? QNAT_DEFAULT_BLOCK_SIZE : 0;
    const layout = qnatDataLayout(0, n, blockSize, qnatBlockCount(n, blockSize), flags);
    qnat.push({ name: t.name, shape: [...t.shape], blockSize });
    entries.push({
      name: t.name,
      source: t.name,
      shape: [...t.shape],
      type: quantize ? "nf4" : "f32",
      bytes: layout.byteLength,
      elements: n,
    });
  }
  return {
    format: "qnat",
    output,
    architecture: weights.architecture,
    fileType: "nf4",
    entries,
    totalBytes: entries.reduce((s, e) => s + e.bytes, 0),
    notices: [],
    qnat,
    flags,
    computeDtype: options.computeDtype ?? "bf16",
  };
}

/** Write `plan` from `weights` into `sink`; returns the NF4 error of the quantized tensors. */
export async function writeQnatModel(
  weights: Weights,
  plan: QnatPlan,
  sink: ByteSink,
  control: RunControl = {},
): Promise<ErrorStats> {
  const cfg = weights.config;
  const modelType = typeof cfg?.model_type === "string" ? cfg.model_type : weights.architecture;
  const writer = new QnatWriter(sink, {
    modelName: weights.path.split(/[\\/]/).filter(Boolean).pop() ?? "",
    modelType: modelType ?? "",
    computeDtype: plan.computeDtype,
    flags: plan.flags,
  }, plan.qnat);
  await writer.writeHeader();
  const total = new ErrorStats();
  const byName = new Map(weights.tensors.map((t) => [t.name, t]));
  let bytesDone = 0;
  const elementsTotal = plan.entries.reduce((s, e) => s + e.elements, 0);
  for (const [i, entry] of plan.entries.entries()) {
    const tensor = byName.get(entry.source)!;
    const block = plan.qnat[i].blockSize;
    for await (
      const chunk of readChunks(weights, tensor, {
        rowMultiple: block ? Math.max(1, block / gcd(block, tensor.shape.at(-1) ?? 1)) : 1,
        signal: control.signal,
      })
    ) {
      // the error from the writer's own encoding (f32 scales; the plan never asks for zero points)
      const enc = await writer.writeTensorData(chunk.data);
      if (enc) {
        const n = chunk.data.length;
        total.add(chunk.data, decodeQnatNf4(enc.codes, 0, enc.scales, undefined, block, 0, n));
      }
      bytesDone += chunk.data.length;
      control.onProgress?.({
        phase: "quantize",
        tensorIndex: i,
        tensorCount: plan.entries.length,
        tensorName: entry.name,
        bytesDone: Math.round((bytesDone / elementsTotal) * plan.totalBytes),
        bytesTotal: plan.totalBytes,
      });
    }
  }
  await writer.finish();
  return total;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
