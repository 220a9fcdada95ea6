/**
 * Random-access reads from a file through `node:fs/promises` positional reads: only the requested
 * ranges are ever read, so a 100 GB checkpoint costs no more memory than its header.
 * @module
 */
import { open } from "node:fs/promises";
import { FormatError, QuantxError } from "./errors.ts";
import { fsError } from "./fs_errors.ts";
import { type ByteSource, checkRange } from "./source.ts";

/** Largest single positional read (the OS may also return less; reads loop until done). */
const MAX_READ = 1 << 30;

/**
 * Open a file for random-access reads. Throws a {@link QuantxError} (`ENOENT`, `EACCES`, `EISDIR`)
 * whose message names the path when the file cannot be opened.
 *
 * @example
 * ```ts ignore
 * import { openFileSource } from "@quantx/core";
 * const src = await openFileSource("model.safetensors");
 * const head = await src.read(0, 8);
 * await src.close();
 * ```
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (e) {
    throw fsError(e, path, path);
  }
  let size: number;
  try {
    const info = await handle.stat();
    if (info.isDirectory()) {
      throw new QuantxError(`${path}: is a folder, not a file`, { code: "EISDIR", path });
    }
    size = info.size;
  } catch (e) {
    await handle.close().catch(() => {});
    throw fsError(e, path, path);
  }
  let closed = false;
  const fh = handle;
  return {
    name: path,
    size,
    async read(offset, length, into) {
      checkRange(path, size, offset, length);
      if (closed) throw new QuantxError(`${path}: read after close`, { code: "EINVAL", path });
      const out = into && into.byteLength >= length
        ? into.subarray(0, length)
        : new Uint8Array(length);
      let done = 0;
      while (done < length) {
        let got: number;
        try {
          ({ bytesRead: got } = await fh.read(
            out,
            done,
            Math.min(MAX_READ, length - done),
            offset + done,
          ));
        } catch (e) {
          throw fsError(e, `cannot read ${path}`, path);
        }
        if (got === 0) {
          throw new FormatError(`file ended early (it shrank while being read)`, {
            file: path,
            offset: offset + done,
          });
        }
        done += got;
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}
