/**
 * Random-access byte sources: in-memory bytes, Blob, file path, HTTP range requests.
 * Readers never load a whole file; they ask a source for the ranges they need.
 * @module
 */
import { FormatError } from "./errors.ts";

/** Random-access, read-only bytes. */
export interface ByteSource {
  /** Name used in error messages (a path, URL or label). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Read exactly `length` bytes at `offset`. A range past the end throws {@link FormatError}
   * naming the offset; the returned array may be a view that the caller must not keep mutating.
   * With `into` (at least `length` bytes), a file source reads straight into it and returns
   * `into.subarray(0, length)`, so a caller can reuse its buffers; other sources may return other
   * memory. Either way the bytes are in the returned array.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Release the underlying handle. Safe to call twice. */
  close(): Promise<void>;
}

/** Throw a {@link FormatError} unless `[offset, offset + length)` lies inside a source of `size` bytes. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    offset + length > size
  ) {
    throw new FormatError(
      `needs ${length} bytes but the file has ${Math.max(0, size - offset)} left (size ${size})`,
      { file: name, offset },
    );
  }
}

/**
 * A source over bytes already in memory.
 *
 * @example
 * ```ts
 * import { bytesSource } from "@quantx/core";
 * const src = bytesSource(new Uint8Array([1, 2, 3]), "three.bin");
 * console.log(await src.read(1, 2)); // Uint8Array [2, 3]
 * ```
 */
export function bytesSource(bytes: Uint8Array, name = "<memory>"): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    read(offset, length) {
      try {
        checkRange(name, bytes.byteLength, offset, length);
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
    close: () => Promise.resolve(),
  };
}

/**
 * A source over a `Blob` (or `File`): each read slices the blob, so nothing is loaded up front.
 * Useful in browsers, webviews and for `fetch` responses turned into blobs.
 *
 * @example
 * ```ts
 * import { blobSource } from "@quantx/core";
 * const src = blobSource(new Blob([new Uint8Array([1, 2, 3])]), "three.bin");
 * console.log(await src.read(1, 2)); // Uint8Array [2, 3]
 * ```
 */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const label = name ?? ((blob as { name?: unknown }).name as string | undefined) ?? "<blob>";
  return {
    name: label,
    size: blob.size,
    async read(offset, length) {
      checkRange(label, blob.size, offset, length);
      if (length === 0) return new Uint8Array(0);
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (bytes.byteLength !== length) {
        throw new FormatError(`blob returned ${bytes.byteLength} bytes instead of ${length}`, {
          file: label,
          offset,
        });
      }
      return bytes;
    },
    close: () => Promise.resolve(),
  };
}
