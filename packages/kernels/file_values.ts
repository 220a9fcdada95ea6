/**
 * Values a worker reads from a file itself, and results it writes into one itself: tensors stored
 * as plain f32, f16 or bf16 and their quantized bytes never pass through the main thread, which
 * only hands out byte ranges. File access uses `node:fs` (Deno, Node and Bun), loaded on first
 * use so that the kernels still load in browsers.
 * @module
 */

/** `count` values stored as `dtype`, little-endian, at byte `offset` of the local file `path`. */
export interface FileValues {
  /** Path of a local file. */
  path: string;
  /** Byte offset of the first value. */
  offset: number;
  /** Number of values. */
  count: number;
  /** Storage type of the values. */
  dtype: "f32" | "f16" | "bf16";
}

/** A place in a local file to write a result at (an existing file, opened for writing). */
export interface FileTarget {
  /** Path of the file. */
  path: string;
  /** Byte offset to write at. */
  offset: number;
}

/** Bytes per value of each {@link FileValues} dtype. */
export const FILE_VALUE_BYTES = { f32: 4, f16: 2, bf16: 2 } as const;

type Fs = typeof import("node:fs");
let fs: Fs | undefined;

/** Loads `node:fs` for {@link readFileValues} and {@link writeFileBytes}; await it once first. */
export async function loadFileAccess(): Promise<void> {
  fs ??= await import("node:fs");
}

/**
 * Reads the stored bytes of `src` into the start of `into` (at least `count` × value size bytes)
 * with positional reads, opening and closing the file each time so that nothing stays open after
 * a worker ends. Throws naming the file and byte offset when it ends early.
 */
export function readFileValues(src: FileValues, into: Uint8Array): void {
  if (!fs) throw new Error("reading a file needs node:fs (Deno, Node or Bun)");
  const length = src.count * FILE_VALUE_BYTES[src.dtype];
  if (into.byteLength < length) {
    throw new RangeError(`readFileValues: ${length} bytes do not fit in ${into.byteLength}`);
  }
  const fd = fs.openSync(src.path, "r");
  try {
    let done = 0;
    while (done < length) {
      const got = fs.readSync(fd, into, done, length - done, src.offset + done);
      if (got === 0) {
        throw new RangeError(
          `${src.path}: at byte ${
            src.offset + done
          }: file ended early (it shrank while being read)`,
        );
      }
      done += got;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `bytes` at `target` with positional writes into the existing file (never creating it),
 * opening and closing it each time.
 */
export function writeFileBytes(target: FileTarget, bytes: Uint8Array): void {
  if (!fs) throw new Error("writing a file needs node:fs (Deno, Node or Bun)");
  const fd = fs.openSync(target.path, "r+");
  try {
    let done = 0;
    while (done < bytes.byteLength) {
      done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, target.offset + done);
    }
  } finally {
    fs.closeSync(fd);
  }
}
