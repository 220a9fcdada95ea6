/**
 * `@quantx/core`: the bottom layer of QuantX. Random-access byte sources (bytes, Blob, file path,
 * HTTP range requests), atomic byte sinks, the tensor model, {@link FormatError}, progress events
 * and abort plumbing. No formats, no math.
 *
 * @example
 * ```ts
 * import { bytesSource, FormatError } from "@quantx/core";
 * const src = bytesSource(new Uint8Array(4), "tiny.bin");
 * try {
 *   await src.read(2, 8);
 * } catch (e) {
 *   console.log(e instanceof FormatError); // true
 * }
 * ```
 * @module
 */
export * from "./errors.ts";
export * from "./tensor.ts";
export * from "./source.ts";
export * from "./file_source.ts";
export * from "./http_source.ts";
export * from "./open.ts";
export * from "./sink.ts";
export * from "./file_sink.ts";
export * from "./file_range.ts";
export * from "./progress.ts";
