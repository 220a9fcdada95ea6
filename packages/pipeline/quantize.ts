/**
 * `quantizeModel` and `planQuantize`: open, plan, stream, finish (DESIGN.md §4).
 * @module
 */
import { stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type ByteSink, createFileSink } from "@quantx/core";
import { modelCard } from "./card.ts";
import { type Kernels, makeKernels } from "./kernels.ts";
import { writeGgufModel } from "./gguf_job.ts";
import { planGguf } from "./gguf_plan.ts";
import { planQnat, writeQnatModel } from "./qnat_job.ts";
import { planBnbJob, writeBnbModel } from "./bnb_job.ts";
import { openWeights } from "./open.ts";
import type { OutputFormat, Plan, QuantizeOptions, QuantizeResult, RunControl } from "./options.ts";
import { checkOutput } from "./output.ts";
import type { ErrorStats } from "./stats.ts";
import { tensorElements, type Weights } from "./weights.ts";

/** The output container for `output` and `options`. */
export function outputFormat(output: string, options: QuantizeOptions): OutputFormat {
  if (options.to) return options.to;
  if (output.endsWith(".qnat")) return "qnat";
  return "gguf";
}

/** What a job wrote. */
interface Written {
  stats: ErrorStats;
  /** Files written (one for GGUF and QNAT; shards, config and side files for bnb). */
  files: string[];
}

/** A planned job: what it will write, and how to write it. */
interface Job {
  plan: Plan;
  run(kernels: () => Promise<Kernels>, control: RunControl): Promise<Written>;
}

/** Run `write` on an atomic file sink for `output`; the sink is aborted on any failure. */
async function intoFile(
  output: string,
  options: QuantizeOptions,
  control: RunControl,
  write: (sink: ByteSink) => Promise<ErrorStats>,
): Promise<Written> {
  const sink = await createFileSink(output, {
    overwrite: options.force === true,
    signal: control.signal,
  });
  try {
    return { stats: await write(sink), files: [output] };
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

async function prepare(weights: Weights, output: string, options: QuantizeOptions): Promise<Job> {
  switch (outputFormat(output, options)) {
    case "gguf": {
      const plan = await planGguf(weights, output, options);
      return {
        plan,
        run: (kernels, control) =>
          intoFile(
            output,
            options,
            control,
            async (sink) => writeGgufModel(weights, plan, sink, await kernels(), control),
          ),
      };
    }
    case "qnat": {
      const plan = planQnat(weights, output, options);
      return {
        plan,
        run: (_kernels, control) =>
          intoFile(
            output,
            options,
            control,
            (sink) => writeQnatModel(weights, plan, sink, control),
          ),
      };
    }
    case "bnb": {
      const plan = planBnbJob(weights, output, options);
      return { plan, run: (_k, control) => writeBnbModel(weights, plan, output, options, control) };
    }
  }
}

/** The plan without its writer-only parts (metadata, transforms, format plans). */
function visiblePlan(plan: Plan): Plan {
  const { format, output, architecture, fileType, entries, totalBytes, notices } = plan;
  return { format, output, architecture, fileType, entries, totalBytes, notices };
}

/** Plan a run without writing anything (`--dry-run`). */
export async function planQuantize(
  input: string,
  output: string,
  options: QuantizeOptions = {},
  control: RunControl = {},
): Promise<Plan> {
  const weights = await openWeights(input);
  try {
    const { plan } = await prepare(weights, output, options);
    for (const n of plan.notices) control.onNotice?.(n);
    return visiblePlan(plan);
  } finally {
    await weights.close();
  }
}

/**
 * Quantize `input` into `output`, streaming tensor by tensor. The output appears atomically at
 * the end; on failure or abort nothing is left behind.
 *
 * @example
 * ```ts ignore
 * import { quantizeModel } from "@quantx/pipeline";
 * const r = await quantizeModel("model.safetensors", "model.gguf", { type: "q8_0" });
 * console.log(r.bitsPerWeight);
 * ```
 */
export async function quantizeModel(
  input: string,
  output: string,
  options: QuantizeOptions = {},
  control: RunControl = {},
): Promise<QuantizeResult> {
  const started = performance.now();
  const format = outputFormat(output, options);
  await checkOutput(input, output, options.force === true, format === "bnb");
  const weights = await openWeights(input);
  let kernels: Kernels | undefined;
  try {
    const { plan, run } = await prepare(weights, output, options);
    for (const n of plan.notices) control.onNotice?.(n);
    if (weights.format === "bnb" || weights.format === "qnat" || quantizedGguf(weights)) {
      control.onNotice?.(
        `${weights.path} is already quantized (${weights.format}); its weights are decoded and quantized again`,
      );
    }
    const { stats, files } = await run(async () => {
      kernels = await makeKernels(options, control);
      return kernels;
    }, control);
    let bytes = 0;
    for (const f of files) bytes += (await stat(f)).size;
    const typeCounts: Record<string, number> = {};
    for (const e of plan.entries) typeCounts[e.type] = (typeCounts[e.type] ?? 0) + 1;
    const parameters = plan.entries.reduce((s, e) => s + e.elements, 0);
    const result: QuantizeResult = {
      plan: visiblePlan(plan),
      output,
      bytes,
      seconds: (performance.now() - started) / 1000,
      typeCounts,
      bitsPerWeight: parameters ? (8 * plan.totalBytes) / parameters : 0,
      error: stats.summary(),
    };
    result.card = await writeCard(result, weights, options, control.onNotice);
    return result;
  } finally {
    kernels?.close();
    await weights.close();
  }
}

function quantizedGguf(weights: Weights): boolean {
  return weights.format === "gguf" &&
    weights.tensors.some((t) => !["f32", "f16", "bf16", "f64"].includes(t.dtype));
}

async function writeCard(
  result: QuantizeResult,
  weights: Weights,
  options: QuantizeOptions,
  onNotice?: (message: string) => void,
): Promise<string | undefined> {
  if (options.card === false) return undefined;
  const folder = result.plan.format === "bnb"
    ? resolve(result.output)
    : dirname(resolve(result.output));
  const path = options.card ?? join(folder, "README.md");
  if (await stat(path).catch(() => undefined)) {
    if (options.card !== undefined) onNotice?.(`model card ${path} exists; left as it is`);
    return undefined;
  }
  const base = weights.config?._name_or_path ?? weights.metadata["general.basename"];
  const text = modelCard(result, {
    input: weights.path,
    baseModel: typeof base === "string" && base ? base : undefined,
    architecture: weights.architecture,
    parameters: weights.tensors.reduce((s, t) => s + tensorElements(t), 0),
  });
  await writeFile(path, text, { flag: "wx" });
  return path;
}
