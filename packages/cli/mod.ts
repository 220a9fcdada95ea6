/**
 * `@quantx/cli`: the `quantx` command.
 *
 * ```sh
 * deno run -A jsr:@quantx/cli quantize ./my-hf-model -o model-q4_k_m.gguf --type q4_k_m
 * deno run -A jsr:@quantx/cli inspect model-q4_k_m.gguf
 * ```
 *
 * @example
 * ```ts
 * import { main } from "@quantx/cli";
 * const code = await main(["--help"]);
 * console.log(code); // 0
 * ```
 * @module
 */
import { FormatError } from "@quantx/core";
import { type Command, COMMANDS } from "./args.ts";
import { ExitCode, UsageError } from "./errors.ts";
import { type Io, systemIo, TERMINATED } from "./io.ts";
import { runInspect } from "./commands/inspect.ts";
import { runQuantize } from "./commands/quantize.ts";
import { runDequantize } from "./commands/dequantize.ts";
import { runDiff } from "./commands/diff.ts";
import { runVerify } from "./commands/verify.ts";

export { ExitCode, UsageError } from "./errors.ts";
export type { Io } from "./io.ts";

/** Top-level help. */
export const HELP = `quantx: turn model weights into smaller, correct files

Usage:
  quantx inspect <file|folder> [--json]
  quantx quantize <input> -o <output> [--to gguf|bnb|qnat] [--type T] [--backend cpu|webgpu|auto]
                  [--threads N] [--dry-run] [--force] [--json] [--quiet]
                  [--pure] [--leave-output-tensor] [--output-tensor-type T]
                  [--token-embedding-type T] [--tensor-type REGEX=T]...
                  [--double-quant] [--compute-dtype bf16|f16|f32] [--max-shard-size 5GB]
                  [--card PATH | --no-card]
  quantx dequantize <input> -o <out.safetensors> [--dtype f32|f16|bf16] [--force]
  quantx diff <a> <b> [--json]
  quantx verify <file> [--json]

Inputs: .safetensors, *.safetensors.index.json, a Hugging Face folder, .gguf, a bitsandbytes
4-bit checkpoint, .qnat.
GGUF types: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs, or a
llama-quantize file type: q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k.
Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
`;

const RUNNERS: Record<Command, (args: string[], io: Io) => Promise<number>> = {
  inspect: runInspect,
  quantize: runQuantize,
  dequantize: runDequantize,
  diff: runDiff,
  verify: runVerify,
};

/** Run `quantx` with `args`; returns the exit code. Never throws. */
export async function main(args: string[], io: Io = systemIo()): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.out(HELP);
    return command === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (command === "--version" || command === "-V") {
    io.out("quantx 0.1.0\n");
    return ExitCode.ok;
  }
  if (!(command in COMMANDS)) {
    io.err(`quantx: unknown command "${command}" (try: ${Object.keys(COMMANDS).join(", ")})\n`);
    return ExitCode.usage;
  }
  try {
    return await RUNNERS[command as Command](rest, io);
  } catch (e) {
    io.clearProgress();
    if (e instanceof UsageError) {
      io.err(`quantx ${command}: ${e.message}\nRun "quantx --help" for usage.\n`);
      return ExitCode.usage;
    }
    if (io.signal.aborted) {
      const terminated = (io.signal.reason as Error | undefined)?.message === TERMINATED;
      io.err(`quantx ${command}: ${terminated ? "terminated" : "interrupted"}\n`);
      return terminated ? ExitCode.terminated : ExitCode.interrupted;
    }
    const message = e instanceof FormatError || e instanceof Error ? e.message : String(e);
    io.err(`quantx ${command}: error: ${message}\n`);
    if (io.debug && e instanceof Error && e.stack) io.err(e.stack + "\n");
    return ExitCode.failed;
  }
}
