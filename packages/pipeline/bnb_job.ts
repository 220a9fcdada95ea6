/**
 * The bitsandbytes output job: a Hugging Face folder that transformers loads as a pre-quantized
 * 4-bit model (DESIGN.md §3), written by `@quantx/bnb`, plus the tokenizer and generation files
 * copied from the input folder.
 * @module
 */
import { constants } from "node:fs";
import { copyFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  type BnbPlan,
  type BnbQuantType,
  planBnb,
  torchDtypeName,
  writeBnbCheckpoint,
} from "@quantx/bnb";
import { dequantizeFp4, dequantizeNf4 } from "@quantx/kernels";
import type { CheckpointWeights } from "./adapters/safetensors.ts";
import type { Plan, PlanEntry, QuantizeOptions, RunControl } from "./options.ts";
import { ErrorStats } from "./stats.ts";
import { UserError } from "./user_error.ts";
import type { Weights } from "./weights.ts";

/** A plan for a bitsandbytes folder. */
export interface BnbJobPlan extends Plan {
  /** The `@quantx/bnb` plan. */
  bnb: BnbPlan;
}

function checkpointOf(weights: Weights): CheckpointWeights {
  const w = weights as Partial<CheckpointWeights>;
  if (weights.format !== "safetensors" || !w.checkpoint) {
    throw new UserError(
      `--to bnb needs a Hugging Face checkpoint (safetensors) as input; ${weights.path} is ${weights.format}`,
    );
  }
  return weights as CheckpointWeights;
}

function bnbOptions(options: QuantizeOptions) {
  const type = (options.type ?? "nf4").toLowerCase();
  if (type !== "nf4" && type !== "fp4") {
    throw new UserError(`--to bnb takes --type nf4 or fp4, not ${options.type}`);
  }
  return {
    quantType: type as BnbQuantType,
    doubleQuant: options.doubleQuant === true,
    computeDtype: torchDtypeName(options.computeDtype ?? "bf16"),
    maxShardBytes: options.maxShardBytes,
  };
}

/** Plan a bitsandbytes 4-bit folder from a safetensors checkpoint. */
export function planBnbJob(weights: Weights, output: string, options: QuantizeOptions): BnbJobPlan {
  const w = checkpointOf(weights);
  const plan = planBnb(w.checkpoint.tensors, bnbOptions(options), w.config);
  const entries: PlanEntry[] = plan.items.map((item) => ({
    name: item.source.name,
    source: item.source.name,
    shape: [...item.source.shape],
    type: item.quantized ? plan.options.quantType : item.source.dtype.toLowerCase(),
    bytes: item.byteLength,
    elements: item.source.shape.reduce((a, b) => a * b, 1),
  }));
  return {
    format: "bnb",
    output,
    architecture: weights.architecture,
    fileType: plan.options.quantType + (plan.options.doubleQuant ? " (double quant)" : ""),
    entries,
    totalBytes: entries.reduce((s, e) => s + e.bytes, 0),
    notices: [],
    bnb: plan,
  };
}

/** Side files of a Hugging Face folder copied next to the quantized weights. */
const SIDE_FILE =
  /^(tokenizer.*|special_tokens_map\.json|generation_config\.json|vocab\.json|merges\.txt|added_tokens\.json|chat_template\.(json|jinja)|.*\.model)$/;

/**
 * Write `plan` into the folder `output`: shards, index, `config.json` with `quantization_config`,
 * tokenizer and generation files. The error of the 4-bit weights is measured as they are written.
 */
export async function writeBnbModel(
  weights: Weights,
  plan: BnbJobPlan,
  output: string,
  options: QuantizeOptions,
  control: RunControl = {},
): Promise<{ stats: ErrorStats; files: string[] }> {
  const w = checkpointOf(weights);
  const ckpt = w.checkpoint;
  const { quantType, blockSize } = plan.bnb.options;
  const decode = quantType === "nf4" ? dequantizeNf4 : dequantizeFp4;
  const stats = new ErrorStats();
  const result = await writeBnbCheckpoint(ckpt, output, {
    ...bnbOptions(options),
    overwrite: options.force === true,
    signal: control.signal,
    onProgress: control.onProgress,
    // the error of the 4-bit weights, from the codes the writer made (float32 absmax)
    onQuantized: (_name, values, codes, absmax) =>
      stats.add(values, decode(codes, absmax, values.length, blockSize)),
  });
  const files = [...result.files];
  try {
    if (w.folder) {
      for (const name of await readdir(w.folder)) {
        if (!SIDE_FILE.test(name)) continue;
        const from = join(w.folder, name);
        if (!(await stat(from)).isFile()) continue;
        const to = join(output, name);
        await copyFile(from, to, options.force ? 0 : constants.COPYFILE_EXCL);
        files.push(to);
      }
    }
  } catch (e) {
    await Promise.all(files.map((f) => rm(f, { force: true }).catch(() => {})));
    throw e;
  }
  return { stats, files };
}
