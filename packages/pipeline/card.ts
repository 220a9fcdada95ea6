/**
 * The model card written beside a quantized file: YAML front matter for the Hugging Face hub,
 * then what the file holds and how far it is from the original.
 * @module
 */
import { basename } from "node:path";
import type { QuantizeResult } from "./options.ts";

/** What the card says about the source model. */
export interface CardSource {
  /** Input path. */
  input: string;
  /** Hugging Face `_name_or_path` or GGUF `general.basename`, when known. */
  baseModel?: string;
  /** Architecture. */
  architecture?: string;
  /** Number of parameters. */
  parameters: number;
}

/** Markdown of the model card for a finished run. */
export function modelCard(result: Omit<QuantizeResult, "card">, source: CardSource): string {
  const { plan, error } = result;
  const tags = plan.format === "gguf"
    ? ["gguf", "quantx", "quantized"]
    : plan.format === "bnb"
    ? ["bitsandbytes", "4-bit", "quantx", "quantized"]
    : ["qnat", "quantx", "quantized"];
  const front = [
    "---",
    `tags: [${tags.join(", ")}]`,
    source.baseModel ? `base_model: ${JSON.stringify(source.baseModel)}` : undefined,
    "---",
  ].filter((l) => l !== undefined);
  const snr = Number.isFinite(error.snrDb) ? `${error.snrDb.toFixed(2)} dB` : "exact";
  const counts = Object.entries(result.typeCounts).sort((a, b) => b[1] - a[1]);
  return [
    ...front,
    "",
    `# ${basename(result.output)}`,
    "",
    `Quantized with [QuantX](https://jsr.io/@quantx/cli) from \`${basename(source.input)}\`.`,
    "",
    "| | |",
    "|---|---|",
    `| architecture | ${source.architecture ?? "unknown"} |`,
    `| parameters | ${source.parameters.toLocaleString("en-US")} |`,
    `| format | ${plan.format} |`,
    `| file type | ${plan.fileType} |`,
    `| bits per weight | ${result.bitsPerWeight.toFixed(2)} |`,
    `| file size | ${result.bytes.toLocaleString("en-US")} bytes |`,
    "",
    "## Tensors per type",
    "",
    "| type | tensors |",
    "|---|---|",
    ...counts.map(([t, n]) => `| ${t} | ${n} |`),
    "",
    "## Quantization error",
    "",
    `Measured while writing, over all ${error.count.toLocaleString("en-US")} quantized values:`,
    "",
    "| RMSE | max abs error | cosine | SNR |",
    "|---|---|---|---|",
    `| ${error.rmse.toExponential(4)} | ${error.maxAbsError.toExponential(4)} | ${
      error.cosine.toFixed(6)
    } | ${snr} |`,
    "",
  ].join("\n");
}
