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
