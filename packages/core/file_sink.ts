/**
 * Atomic file output: bytes go to `X.partial`, which is fsynced and renamed to `X` on close and
 * removed on error or abort. A failed or interrupted job never leaves a half-written `X`.
 * @module
 */
import { open, rename, rm, stat } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { QuantxError } from "./errors.ts";
import { fsError } from "./fs_errors.ts";
import type { ByteSink } from "./sink.ts";

/** Options for {@link createFileSink}. */
export interface FileSinkOptions {
  /** Replace an existing file at the final path (default: refuse with `EEXIST`). */
  overwrite?: boolean;
  /** Aborting removes the partial file and makes further writes fail. */
  signal?: AbortSignal;
}

/** Suffix of the temporary file a {@link createFileSink} writes before renaming it into place. */
export const PARTIAL_SUFFIX = ".partial";

/**
 * Bytes written between background flushes: the file is synced to disk as it grows, so closing it
 * (which syncs before the rename) waits for the last few MB, not for all of a multi-GB output.
 */
const FLUSH_BYTES = 64 << 20;

/**
 * Create an atomic file sink for `path`. Refuses an existing `path` unless `overwrite` is set; a
 * stale `path.partial` from an earlier crash is replaced. The data is synced to disk as it is
 * written and before the rename, so `path` is never a name for missing data.
 *
 * @example
 * ```ts ignore
 * import { createFileSink } from "@quantx/core";
 * const sink = await createFileSink("out.bin", { overwrite: true });
 * await sink.write(new Uint8Array([1, 2, 3]));
 * await sink.close(); // out.bin appears only now
 * ```
 */
export async function createFileSink(
  path: string,
  options: FileSinkOptions = {},
): Promise<ByteSink> {
  const { overwrite = false, signal } = options;
  signal?.throwIfAborted();
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new QuantxError(`${path}: is a folder, not a file`, { code: "EISDIR", path });
  }
  if (existing && !overwrite) {
    throw new QuantxError(`${path}: already exists (use --force to replace it)`, {
      code: "EEXIST",
      path,
    });
  }
  const partial = path + PARTIAL_SUFFIX;
  let handle: FileHandle;
  try {
    handle = await open(partial, "w");
  } catch (e) {
    throw fsError(e, `cannot write ${path}`, path);
  }
  let position = 0;
  let state: "open" | "closed" | "aborted" = "open";
  let pending: Promise<unknown> = Promise.resolve(); // every write so far, settled or not
  // one background datasync at a time, started every FLUSH_BYTES; a failure fails the next call
  let flushing: Promise<void> | undefined;
  let flushError: { error: unknown } | undefined;
  let unflushed = 0;

  let discarded: Promise<void> | undefined;
  const discard = (): Promise<void> => {
    if (discarded) return discarded;
    if (state === "closed") return Promise.resolve();
    state = "aborted";
    discarded = (async () => {
      await pending;
      await flushing;
      await handle.close().catch(() => {});
      await rm(partial, { force: true }).catch(() => {});
    })();
    return discarded;
  };
  const onAbort = () => void discard();
  // Count bytes written (here or into reserved ranges) and sync in the background now and then.
  const advance = (length: number) => {
    position += length;
    unflushed += length;
    if (unflushed >= FLUSH_BYTES && !flushing && !flushError) {
      unflushed = 0;
      flushing = handle.datasync().then(
        () => {
          flushing = undefined;
        },
        (error) => {
          flushError = { error };
          flushing = undefined;
        },
      );
    }
  };
  const ensureFlushed = () => {
    if (flushError) throw fsError(flushError.error, `cannot write ${path}`, path);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const ensureOpen = () => {
    if (state === "aborted") {
      throw signal?.aborted
        ? (signal.reason ?? new DOMException("aborted", "AbortError"))
        : new QuantxError(`${path}: write after abort`, { code: "EINVAL", path });
    }
    if (state === "closed") {
      throw new QuantxError(`${path}: write after close`, { code: "EINVAL", path });
    }
  };

  return {
    name: path,
    get position() {
      return position;
    },
    async write(bytes) {
      if (state === "aborted") await discarded;
      ensureOpen();
      try {
        ensureFlushed();
      } catch (e) {
        await discard();
        throw e;
      }
      // the place is taken now, so a write or reserve issued before this one ends comes after it
      const at = position;
      advance(bytes.byteLength);
      const job = (async () => {
        let done = 0;
        while (done < bytes.byteLength) {
          const { bytesWritten } = await handle.write(
            bytes,
            done,
            bytes.byteLength - done,
            at + done, // positional: ranges handed out by reserve() lie in between
          );
          done += bytesWritten;
        }
      })();
      pending = Promise.allSettled([pending, job]);
      try {
        await job;
      } catch (e) {
        await discard();
        throw fsError(e, `cannot write ${path}`, path);
      }
    },
    reserve(length) {
      ensureOpen();
      try {
        ensureFlushed();
      } catch (e) {
        void discard();
        throw e;
      }
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new RangeError(`reserve: length must be a non-negative integer, got ${length}`);
      }
      const range = { path: partial, offset: position, name: path };
      advance(length);
      return range;
    },
    async close() {
      ensureOpen();
      try {
        await pending;
        await flushing;
        ensureFlushed();
        const size = (await handle.stat()).size;
        if (size !== position) {
          throw new QuantxError(
            `${path}: ${position} bytes were written or reserved, but the file has ${size}`,
            { code: "EIO", path },
          );
        }
        await handle.sync();
        await handle.close();
        state = "closed";
        await rename(partial, path);
      } catch (e) {
        state = "open";
        await discard();
        throw fsError(e, `cannot write ${path}`, path);
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    },
    async abort() {
      signal?.removeEventListener("abort", onAbort);
      await discard();
    },
  };
}
