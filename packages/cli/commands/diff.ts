/**
 * `quantx diff <a> <b> [--json]`: per-tensor RMSE, max |error|, cosine similarity and SNR.
 * @module
 */
import { diffWeights } from "@quantx/pipeline";
import { parseCommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";
import { table } from "../table.ts";

/** Run `diff`. */
export async function runDiff(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseCommand("diff", args);
  if (flags.help) return io.out("Usage: quantx diff <a> <b> [--json]\n"), 0;
  if (positionals.length !== 2) throw new UsageError("diff takes exactly two files");
  const bar = io.progress(flags.quiet === true || flags.json === true);
  const report = await diffWeights(positionals[0], positionals[1], {
    signal: io.signal,
    onProgress: bar.update,
  });
  bar.clear();
  if (flags.json) {
    io.out(
      JSON.stringify(
        report,
        (_k, v) => Number.isFinite(v) || typeof v !== "number" ? v : String(v),
        2,
      ) + "\n",
    );
    return 0;
  }
  const snr = (x: number) => Number.isFinite(x) ? x.toFixed(2) : "exact";
  io.out(table(
    ["tensor", "rmse", "max |err|", "cosine", "SNR dB"],
    report.tensors.map((t) => [
      t.name,
      t.rmse.toExponential(3),
      t.maxAbsError.toExponential(3),
      t.cosine.toFixed(6),
      snr(t.snrDb),
    ]),
    [false, true, true, true, true],
  ));
  const s = report.total;
  io.out(
    `total: ${report.tensors.length} tensors, rmse ${s.rmse.toExponential(3)}, max |err| ${
      s.maxAbsError.toExponential(3)
    }, cosine ${s.cosine.toFixed(6)}, SNR ${snr(s.snrDb)} dB\n`,
  );
  for (const n of report.onlyInA) io.out(`only in ${positionals[0]}: ${n}\n`);
  for (const n of report.onlyInB) io.out(`only in ${positionals[1]}: ${n}\n`);
  return 0;
}
