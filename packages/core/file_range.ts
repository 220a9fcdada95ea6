/**
 * Blocking positional reads and writes of byte ranges of local files, for worker threads: a
 * worker that quantizes one chunk at a time reads its input and writes its result with one call
 * each, and nothing passes through the main thread. The main thread uses `ByteSource` and
 * `ByteSink` instead. Each call opens and closes the file, so nothing stays open when a
 * worker ends.
 * @module
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { FormatError } from "./errors.ts";
import { fsError } from "./fs_errors.ts";

/** A place in a local file: a path and a byte offset. */
export interface FileRange {
  /** Path of the file. */
  path: string;
  /** Byte offset. */
  offset: number;
  /** Name for messages (default: `path`), e.g. the final name of a partial file. */
  name?: string;
}

/**
 * Fill `into` with the bytes of `range.path` from `range.offset` on. A file that ends early is a
 * {@link FormatError} naming the file and offset; other failures name the path.
 *
 * @example
 * ```ts ignore
 * import { readFileRangeSync } from "@quantx/core";
 * const head = new Uint8Array(8);
 * readFileRangeSync({ path: "model.safetensors", offset: 0 }, head);
 * ```
 */
export function readFileRangeSync(range: FileRange, into: Uint8Array): void {
  withFile(range, "r", "cannot read", (fd) => {
    let done = 0;
    while (done < into.byteLength) {
      const got = readSync(fd, into, done, into.byteLength - done, range.offset + done);
      if (got === 0) {
        throw new FormatError("file ended early (it shrank while being read)", {
          file: range.name ?? range.path,
          offset: range.offset + done,
        });
      }
      done += got;
    }
  });
}

/**
 * Write `bytes` into the existing file `range.path` at `range.offset` (the file is never
 * created: a range comes from `ByteSink.reserve`).
 *
 * @example
 * ```ts ignore
 * import { createFileSink, writeFileRangeSync } from "@quantx/core";
 * const sink = await createFileSink("out.bin");
 * const range = sink.reserve!(3); // filled in by a worker thread:
 * writeFileRangeSync(range, new Uint8Array([1, 2, 3]));
 * await sink.close();
 * ```
 */
export function writeFileRangeSync(range: FileRange, bytes: Uint8Array): void {
  withFile(range, "r+", "cannot write", (fd) => {
    let done = 0;
    while (done < bytes.byteLength) {
      done += writeSync(fd, bytes, done, bytes.byteLength - done, range.offset + done);
    }
  });
}

/** Open the file, run `use`, close; file-system errors become "<what> <name>: <reason>". */
function withFile(range: FileRange, flags: string, what: string, use: (fd: number) => void): void {
  const name = range.name ?? range.path;
  let fd: number;
  try {
    fd = openSync(range.path, flags);
  } catch (e) {
    throw fsError(e, `${what} ${name}`, name);
  }
  try {
    use(fd);
  } catch (e) {
    throw e instanceof FormatError ? e : fsError(e, `${what} ${name}`, name);
  } finally {
    closeSync(fd);
  }
}
