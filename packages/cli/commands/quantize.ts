/**
 * `quantx quantize <input> -o <output> ...`: the job users come for.
 * @module
 */
import {
  outputFormat,
  type Plan,
  planQuantize,
  quantizeModel,
  type QuantizeOptions,
  type TensorTypeOverride,
  typeNameProblems,
} from "@quantx/pipeline";
import { intFlag, oneOf, parseCommand, sizeFlag } from "../args.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";
import { formatBytes } from "../progress.ts";
import { table } from "../table.ts";

const USAGE = "Usage: quantx quantize <input> -o <output> [--to gguf|bnb|qnat] [--type T] ...\n";

/** Run `quantize`. */
export async function runQuantize(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseCommand("quantize", args);
  if (flags.help) return io.out(USAGE), 0;
  if (positionals.length !== 1) throw new UsageError("quantize takes exactly one input");
  const output = flags.output as string | undefined;
  if (!output) throw new UsageError("missing -o <output>");
  if (flags.card !== undefined && flags["no-card"]) {
    throw new UsageError("--card and --no-card exclude each other");
  }
  const options: QuantizeOptions = {
    to: oneOf("to", flags.to as string | undefined, ["gguf", "bnb", "qnat"] as const),
    type: flags.type as string | undefined,
    backend: oneOf(
      "backend",
      flags.backend as string | undefined,
      ["cpu", "webgpu", "auto"] as const,
    ),
    threads: intFlag("threads", flags.threads as string | undefined),
    force: flags.force === true,
    card: flags["no-card"] ? false : flags.card as string | undefined,
    pure: flags.pure === true,
    leaveOutputTensor: flags["leave-output-tensor"] === true,
    outputTensorType: flags["output-tensor-type"] as string | undefined,
    tokenEmbeddingType: flags["token-embedding-type"] as string | undefined,
    tensorTypes: parseTensorTypes(flags["tensor-type"] as string[] | undefined),
    doubleQuant: flags["double-quant"] === true,
    computeDtype: oneOf(
      "compute-dtype",
      flags["compute-dtype"] as string | undefined,
      ["bf16", "f16", "f32"] as const,
    ),
    maxShardBytes: sizeFlag("max-shard-size", flags["max-shard-size"] as string | undefined),
  };
  const problems = typeNameProblems(outputFormat(output, options), options);
  if (problems.length) throw new UsageError(problems.join("; "));
  const input = positionals[0];
  const notices: string[] = [];
  const onNotice = (m: string) => {
    notices.push(m);
    if (!flags.quiet && !flags.json) io.err(`quantx: ${m}\n`);
  };

  if (flags["dry-run"]) {
    const plan = await planQuantize(input, output, options, { onNotice });
    io.out(flags.json ? JSON.stringify(plan, null, 2) + "\n" : renderPlan(plan));
    return 0;
  }

  const bar = io.progress(flags.quiet === true || flags.json === true);
  const result = await quantizeModel(input, output, options, {
    signal: io.signal,
    onProgress: bar.update,
    onNotice,
  });
  bar.clear();
  if (flags.json) {
    io.out(JSON.stringify({ ...result, notices }, null, 2) + "\n");
    return 0;
  }
  const e = result.error;
  io.out(
    [
      `wrote ${result.output} (${formatBytes(result.bytes)}, ${
        result.bitsPerWeight.toFixed(2)
      } bits/weight) in ${result.seconds.toFixed(1)} s`,
      `tensors: ${Object.entries(result.typeCounts).map(([t, n]) => `${t}: ${n}`).join(", ")}`,
      `error: rmse ${e.rmse.toExponential(3)}, max |err| ${e.maxAbsError.toExponential(3)}, ` +
      `cosine ${e.cosine.toFixed(6)}, SNR ${
        Number.isFinite(e.snrDb) ? e.snrDb.toFixed(2) + " dB" : "exact"
      }`,
      result.card ? `model card: ${result.card}` : undefined,
    ].filter(Boolean).join("\n") + "\n",
  );
  return 0;
}

function parseTensorTypes(values: string[] | undefined): TensorTypeOverride[] | undefined {
  if (!values?.length) return undefined;
  return values.map((v) => {
    const at = v.lastIndexOf("=");
    if (at <= 0 || at === v.length - 1) {
      throw new UsageError(`--tensor-type takes REGEX=TYPE, got "${v}"`);
    }
    let pattern: RegExp;
    try {
      pattern = new RegExp(v.slice(0, at));
    } catch (e) {
      throw new UsageError(`--tensor-type: bad regular expression: ${(e as Error).message}`);
    }
    return { pattern, type: v.slice(at + 1).toLowerCase() };
  });
}

/** The `--dry-run` table. */
export function renderPlan(plan: Plan): string {
  const rows = plan.entries.map((e) => [
    e.name,
    `[${e.shape.join(", ")}]`,
    e.type,
    String(e.bytes),
  ]);
  return `plan: ${plan.output} (${plan.format}, ${plan.fileType}${
    plan.architecture ? `, ${plan.architecture}` : ""
  })\n` +
    table(["tensor", "shape", "type", "bytes"], rows, [false, false, false, true]) +
    `total: ${plan.entries.length} tensors, ${
      formatBytes(plan.totalBytes)
    } (${plan.totalBytes} bytes)\n`;
}
