/**
 * `quantx verify <file> [--json]`: layout rules, decode every tensor, NaN/Inf scan. Exit 1 on any
 * problem.
 * @module
 */
import { verifyWeights } from "@quantx/pipeline";
import { parseCommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";

/** Run `verify`. */
export async function runVerify(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseCommand("verify", args);
  if (flags.help) return io.out("Usage: quantx verify <file> [--json]\n"), 0;
  if (positionals.length !== 1) throw new UsageError("verify takes exactly one file");
  const bar = io.progress(flags.quiet === true || flags.json === true);
  const report = await verifyWeights(positionals[0], { signal: io.signal, onProgress: bar.update });
  bar.clear();
  if (flags.json) io.out(JSON.stringify(report, null, 2) + "\n");
  else {
    for (const p of report.problems) io.out(`problem: ${p}\n`);
    io.out(
      report.ok
        ? `ok: ${report.path} (${report.format}, ${report.tensors} tensors decoded, no NaN/Inf)\n`
        : `FAILED: ${report.problems.length} problem(s) in ${report.path}\n`,
    );
  }
  return report.ok ? 0 : 1;
}
