/**
 * `quantx dequantize <input> -o <out.safetensors> [--dtype f32|f16|bf16]`.
 * @module
 */
import { dequantizeModel } from "@quantx/pipeline";
import { oneOf, parseCommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";
import { formatBytes } from "../progress.ts";

/** Run `dequantize`. */
export async function runDequantize(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseCommand("dequantize", args);
  if (flags.help) {
    return io.out("Usage: quantx dequantize <input> -o <out.safetensors> [--dtype f32|f16|bf16]\n"),
      0;
  }
  if (positionals.length !== 1) throw new UsageError("dequantize takes exactly one input");
  const output = flags.output as string | undefined;
  if (!output) throw new UsageError("missing -o <out.safetensors>");
  const dtype =
    oneOf("dtype", flags.dtype as string | undefined, ["f32", "f16", "bf16"] as const) ??
      "f32";
  const bar = io.progress(flags.quiet === true || flags.json === true);
  const result = await dequantizeModel(positionals[0], output, {
    dtype,
    force: flags.force === true,
  }, {
    signal: io.signal,
    onProgress: bar.update,
  });
  bar.clear();
  if (flags.json) io.out(JSON.stringify(result, null, 2) + "\n");
  else {
    io.out(
      `wrote ${result.output} (${
        formatBytes(result.bytes)
      }, ${result.tensors} tensors, ${dtype})\n`,
    );
  }
  return 0;
}
