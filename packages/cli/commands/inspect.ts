/**
 * `quantx inspect <file|folder> [--json]`: format, architecture, parameters, bits per weight,
 * metadata and tensors.
 * @module
 */
import { inspectWeights } from "@quantx/pipeline";
import { parseCommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";
import { formatBytes } from "../progress.ts";
import { table } from "../table.ts";

/** Run `inspect`. */
export async function runInspect(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseCommand("inspect", args);
  if (flags.help) return io.out("Usage: quantx inspect <file|folder> [--json]\n"), 0;
  if (positionals.length !== 1) throw new UsageError("inspect takes exactly one file or folder");
  const report = await inspectWeights(positionals[0]);
  if (flags.json) {
    io.out(JSON.stringify(report, null, 2) + "\n");
    return 0;
  }
  const lines = [
    `file:          ${report.path}`,
    `format:        ${report.format}`,
    report.architecture ? `architecture:  ${report.architecture}` : undefined,
    `parameters:    ${report.parameters.toLocaleString("en-US")}`,
    `size:          ${formatBytes(report.fileSize)} (${report.fileSize} bytes)`,
    `bits/weight:   ${report.bitsPerWeight.toFixed(2)}`,
    `tensors:       ${report.tensors.length} (${
      Object.entries(report.typeCounts).map(([t, n]) => `${t}: ${n}`).join(", ")
    })`,
    ...Object.entries(report.details).map(([k, v]) => `${(k + ":").padEnd(15)}${v}`),
  ].filter((l) => l !== undefined);
  io.out(lines.join("\n") + "\n");
  const meta = Object.entries(report.metadata);
  if (meta.length) {
    io.out("\nmetadata:\n");
    for (const [k, v] of meta) {
      io.out(`  ${k} = ${typeof v === "string" ? v : JSON.stringify(v)}\n`);
    }
  }
  io.out("\ntensors:\n");
  io.out(table(
    ["name", "shape", "type", "bytes"],
    report.tensors.map((t) => [t.name, `[${t.shape.join(", ")}]`, t.dtype, String(t.bytes)]),
    [false, false, false, true],
  ));
  return 0;
}
