/**
 * Checks on an output path before a job starts.
 * @module
 */
import { readdir, realpath, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { UserError } from "./user_error.ts";

/**
 * Refuse outputs that would destroy the input, overwrite without `force`, or cannot be written.
 * A `folder` output (bitsandbytes) may exist when it is empty.
 */
export async function checkOutput(
  input: string,
  output: string,
  force: boolean,
  folder = false,
): Promise<void> {
  const dir = dirname(resolve(output));
  const dirInfo = await stat(dir).catch(() => undefined);
  if (!dirInfo?.isDirectory()) throw new UserError(`output folder ${dir} does not exist`);
  const existing = await stat(output).catch(() => undefined);
  if (!existing) return;
  const [a, b] = await Promise.all([realpath(input).catch(() => input), realpath(output)]);
  if (a === b) throw new UserError(`output ${output} is the input`);
  if (folder) {
    if (!existing.isDirectory()) throw new UserError(`output ${output} exists and is not a folder`);
    if (!force && (await readdir(output)).length > 0) {
      throw new UserError(`output folder ${output} is not empty (use --force to write into it)`);
    }
    return;
  }
  if (existing.isDirectory()) throw new UserError(`output ${output} is a folder`);
  if (!force) throw new UserError(`output ${output} exists (use --force to replace it)`);
}
