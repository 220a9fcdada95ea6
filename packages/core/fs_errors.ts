/**
 * Turns `node:fs` errors into {@link QuantxError}s whose message names the path in plain words.
 * Internal to `@quantx/core` (not re-exported by `mod.ts`).
 * @module
 */
import { QuantxError } from "./errors.ts";

const REASONS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a folder, not a file",
  ENOTDIR: "a parent of the path is not a folder",
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
  EEXIST: "already exists",
  EMFILE: "too many open files",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large",
};

/** The `code` of a Node-style system error, if it has one. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * Wrap a file-system error: `"<what>: <reason>"`, e.g. `"cannot write out.gguf: permission
 * denied"`. A {@link QuantxError} passes through unchanged.
 */
export function fsError(e: unknown, what: string, path: string): Error {
  if (e instanceof QuantxError) return e;
  const code = errorCode(e);
  const reason = (code && REASONS[code]) ?? (e instanceof Error ? e.message : String(e));
  return new QuantxError(`${what}: ${reason}`, { code: code ?? "EIO", path, cause: e });
}
