/**
 * Errors raised on malformed input. Every reader in QuantX throws {@link FormatError} for bytes it
 * cannot accept, naming the file, the byte offset and what was expected there.
 * @module
 */

/** Where and why a file was rejected. */
export interface FormatErrorOptions {
  /** The file (path or name) that was being read. */
  file?: string;
  /** Byte offset in that file where the problem was found. */
  offset?: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A file does not follow its format. The message reads
 * `"<file>: at byte <offset>: <reason>"`, so it can be shown to a user as it is.
 *
 * @example
 * ```ts
 * import { FormatError } from "@quantx/core";
 * const err = new FormatError("bad magic", { file: "model.gguf", offset: 0 });
 * console.log(err.message); // "model.gguf: at byte 0: bad magic"
 * ```
 */
export class FormatError extends Error {
  /** The file that was being read, when known. */
  readonly file?: string;
  /** Byte offset of the problem, when known. */
  readonly offset?: number;
  /** The reason alone, without file and offset. */
  readonly reason: string;

  constructor(reason: string, options: FormatErrorOptions = {}) {
    const where = [
      options.file,
      options.offset === undefined ? undefined : `at byte ${options.offset}`,
    ].filter((s) => s !== undefined).join(": ");
    super(where ? `${where}: ${reason}` : reason, { cause: options.cause });
    this.name = "FormatError";
    this.file = options.file;
    this.offset = options.offset;
    this.reason = reason;
  }
}

/** Where and why an operation failed (see {@link QuantxError}). */
export interface QuantxErrorOptions {
  /**
   * A short machine-readable code: `EEXIST` (output exists), `ENOENT` (missing file or folder),
   * `EACCES` (not writable/readable), `EISDIR` (a folder where a file was expected), `ERANGE`
   * (HTTP server without range support), `EHTTP` (other HTTP failure), `EINVAL` (bad argument),
   * `ENOTENSOR` (unknown tensor name), `EUNSUPPORTED` (a conversion QuantX does not do), `EIO`.
   */
  code?: string;
  /** The file, folder or URL concerned. */
  path?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A problem that is not malformed input: an output that already exists, a folder that cannot be
 * written, a server without range requests, an unknown tensor name, a wrong argument. The message
 * names the path and reads well on its own; {@link QuantxError.code} lets programs branch on it.
 *
 * @example
 * ```ts
 * import { QuantxError } from "@quantx/core";
 * const err = new QuantxError("out.gguf: already exists", { code: "EEXIST", path: "out.gguf" });
 * console.log(err.code); // "EEXIST"
 * ```
 */
export class QuantxError extends Error {
  /** Machine-readable code (see {@link QuantxErrorOptions.code}); `EIO` when none was given. */
  readonly code: string;
  /** The file, folder or URL concerned, when known. */
  readonly path?: string;

  constructor(message: string, options: QuantxErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "QuantxError";
    this.code = options.code ?? "EIO";
    this.path = options.path;
  }
}
