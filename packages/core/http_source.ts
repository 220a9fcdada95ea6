/**
 * Random-access reads over HTTP(S) with `Range` requests, so a remote checkpoint can be inspected
 * without downloading it.
 * @module
 */
import { FormatError, QuantxError } from "./errors.ts";
import { type ByteSource, checkRange } from "./source.ts";

/** Options for {@link openHttpSource}. */
export interface HttpSourceOptions {
  /** Extra request headers (e.g. `Authorization`). */
  headers?: Record<string, string>;
  /** `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

/**
 * Open a URL whose server honours `Range: bytes=a-b`. The size comes from a `HEAD` request (or a
 * one-byte range when `HEAD` gives no length). A server that ignores ranges is refused with
 * `ERANGE` rather than downloaded whole.
 *
 * @example
 * ```ts ignore
 * import { openHttpSource } from "@quantx/core";
 * const src = await openHttpSource("https://huggingface.co/x/y/resolve/main/model.safetensors");
 * const head = await src.read(0, 8);
 * ```
 */
export async function openHttpSource(
  url: string | URL,
  options: HttpSourceOptions = {},
): Promise<ByteSource> {
  const name = String(url);
  const doFetch = options.fetch ?? fetch;
  const fail = (message: string, code: string, cause?: unknown) =>
    new QuantxError(`${name}: ${message}`, { code, path: name, cause });

  let size = -1;
  try {
    const head = await doFetch(name, { method: "HEAD", headers: options.headers });
    await head.body?.cancel();
    if (head.ok) size = Number(head.headers.get("content-length") ?? -1);
    if (!head.ok && head.status !== 405) throw fail(`HTTP ${head.status}`, "EHTTP");
  } catch (e) {
    if (e instanceof QuantxError) throw e;
    throw fail(`cannot connect (${(e as Error).message})`, "EHTTP", e);
  }
  if (!(size >= 0)) {
    const probe = await doFetch(name, { headers: { ...options.headers, range: "bytes=0-0" } });
    const total = /\/(\d+)$/.exec(probe.headers.get("content-range") ?? "")?.[1];
    await probe.body?.cancel();
    if (probe.status !== 206 || total === undefined) {
      throw fail("server does not support range requests", "ERANGE");
    }
    size = Number(total);
  }

  return {
    name,
    size,
    async read(offset, length) {
      checkRange(name, size, offset, length);
      if (length === 0) return new Uint8Array(0);
      const range = `bytes=${offset}-${offset + length - 1}`;
      const res = await doFetch(name, { headers: { ...options.headers, range } });
      if (res.status !== 206) {
        await res.body?.cancel();
        throw fail(
          res.ok ? "server ignored the range request" : `HTTP ${res.status}`,
          res.ok ? "ERANGE" : "EHTTP",
        );
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.byteLength !== length) {
        throw new FormatError(`server sent ${bytes.byteLength} bytes instead of ${length}`, {
          file: name,
          offset,
        });
      }
      return bytes;
    },
    close: () => Promise.resolve(),
  };
}
