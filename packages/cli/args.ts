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
    "max-shard-size": { type: "string" },
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

/** Parse a size such as `5GB`, `500MB`, `2GiB` or a byte count (transformers' `max_shard_size`). */
export function sizeFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?$/i.exec(value.trim());
  const units: Record<string, number> = {
    B: 1,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    TB: 1e12,
    KIB: 2 ** 10,
    MIB: 2 ** 20,
    GIB: 2 ** 30,
    TIB: 2 ** 40,
  };
  const bytes = m ? Math.floor(Number(m[1]) * units[(m[2] ?? "B").toUpperCase()]) : NaN;
  if (!(bytes >= 1)) {
    throw new UsageError(`--${name} takes a size such as 5GB, 500MB or 1000000; got "${value}"`);
  }
  return bytes;
}
