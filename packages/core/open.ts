/**
 * One entry point for "give me bytes from this": a path, a URL, bytes, a Blob or a source.
 * @module
 */
import { openFileSource } from "./file_source.ts";
import { openHttpSource } from "./http_source.ts";
import { blobSource, type ByteSource, bytesSource } from "./source.ts";

/** Anything {@link openSource} accepts. */
export type SourceInput = string | URL | Uint8Array | Blob | ByteSource;

/**
 * Open `input` as a {@link ByteSource}: `http(s)://` strings and URLs use range requests,
 * `file:` URLs and other strings are file paths, bytes and Blobs are read in memory, and a
 * source is returned as it is.
 *
 * @example
 * ```ts
 * import { openSource } from "@quantx/core";
 * const src = await openSource(new Uint8Array([1, 2, 3]));
 * console.log(src.size); // 3
 * ```
 */
export function openSource(input: SourceInput, name?: string): Promise<ByteSource> {
  if (input instanceof Uint8Array) return Promise.resolve(bytesSource(input, name));
  if (typeof Blob !== "undefined" && input instanceof Blob) {
    return Promise.resolve(blobSource(input, name));
  }
  if (typeof input === "string" || input instanceof URL) {
    const text = String(input);
    if (/^https?:\/\//i.test(text)) return openHttpSource(text);
    if (input instanceof URL && input.protocol === "file:") {
      return openFileSource(decodeURIComponent(input.pathname));
    }
    return openFileSource(text);
  }
  return Promise.resolve(input as ByteSource);
}

/**
 * Open `input` (as {@link openSource} does) and run `parse` on the source. A source opened here
 * is closed again when `parse` throws; one passed in stays the caller's to close.
 *
 * @example
 * ```ts
 * import { parseSource } from "@quantx/core";
 * const first = await parseSource(new Uint8Array([7, 8]), async (src) => (await src.read(0, 1))[0]);
 * console.log(first); // 7
 * ```
 */
export async function parseSource<T>(
  input: SourceInput,
  parse: (source: ByteSource) => Promise<T>,
  name?: string,
): Promise<T> {
  const source = await openSource(input, name);
  try {
    return await parse(source);
  } catch (e) {
    if (source !== input) await source.close().catch(() => {});
    throw e;
  }
}
