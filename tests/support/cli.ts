/**
 * Run the `quantx` command as a user would: a spawned process, its exit code, stdout and stderr.
 * @module
 */
import { join } from "node:path";
import { createFileSink } from "@quantx/core";
import { writeSafetensors } from "@quantx/safetensors";

/** The CLI entry point. */
export const CLI = join(new URL("../..", import.meta.url).pathname, "packages/cli/main.ts");

/** Result of one run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `quantx ...args` in a child process. */
export async function quantx(args: string[], opts: { cwd?: string } = {}): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: opts.cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A tensor to write into a test checkpoint. */
export interface TestTensor {
  name: string;
  shape: number[];
  /** Float values (written as `dtype`). */
  values: Float32Array;
  dtype?: "F32" | "F16" | "BF16";
}

/** Write a safetensors file of float tensors (F32 unless told otherwise). */
export async function writeTestSafetensors(path: string, tensors: TestTensor[]): Promise<void> {
  const { fromF32 } = await import("@quantx/safetensors");
  await writeSafetensors(
    await createFileSink(path, { overwrite: true }),
    tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype ?? "F32",
      shape: t.shape,
      data: fromF32(t.dtype ?? "F32", t.values),
    })),
  );
}

/** Files in a folder (to check that nothing was left behind). */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}
