/**
 * Command-line parsing for `quantx`: one table of flags per command, strict (an unknown flag or a
 * missing value is a usage error).
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.ts";

/** The commands and their flags. */
export const COMMANDS = {
  inspect: { json: { type: "boolean" } },
  quantize: {
    output: { type: "string", short: "o" },
    to: { type: "string" },
    type: { type: "string", short: "t" },
    backend: { type: "string" },
    threads: { type: "string", short: "j" },
    "dry-run": { type: "boolean" },
    force: { type: "boolean", short: "f" },
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    card: { type: "string" },
    "no-card": { type: "boolean" },
    pure: { type: "boolean" },
    "leave-output-tensor": { type: "boolean" },
    "output-tensor-type": { type: "string" },
    "token-embedding-type": { type: "string" },
    "tensor-type": { type: "string", multiple: true },
    "double-quant": { type: "boolean" },
    "compute-dtype": { type: "string" },
  },
  dequantize: {
    output: { type: "string", short: "o" },
    dtype: { type: "string" },
    force: { type: "boolean", short: "f" },
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
  },
  diff: { json: { type: "boolean" }, quiet: { type: "boolean", short: "q" } },
  verify: { json: { type: "boolean" }, quiet: { type: "boolean", short: "q" } },
} as const satisfies Record<string, ParseArgsConfig["options"]>;

/** A command name. */
export type Command = keyof typeof COMMANDS;

/** Parsed flags of one command. */
export type Flags = Record<string, string | boolean | string[] | undefined>;

/** Parse `args` (after the command name) for `command`. */
export function parseCommand(
  command: Command,
  args: string[],
): { flags: Flags; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...COMMANDS[command], help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { flags: values as Flags, positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify.*$/s, ""));
  }
}

/** Parse a positive integer flag. */
export function intFlag(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got "${value}"`);
  }
  return n;
}

/** Check a flag against its allowed values. */
export function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}; got "${value}"`);
  }
  return value as T;
}
