/**
 * Streaming byte sinks. File sinks are atomic: they write `X.partial`, fsync, then rename to `X`;
 * on error or abort the partial file is removed, so a failed job never leaves a half-written file.
 * @module
 */

import type { FileRange } from "./file_range.ts";

/** Sequential, write-only bytes with commit-or-abort semantics. */
export interface ByteSink {
  /** Name used in messages (the final path for a file sink). */
  readonly name: string;
  /** Bytes written so far (for a file sink: written, being written or reserved). */
  readonly position: number;
  /** Append bytes. The sink does not keep a reference to `bytes` after the promise resolves. */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * File sinks only: skip `length` bytes that the caller writes itself, with positional writes
   * into the file `path` at byte `offset` (the partial file), before {@link ByteSink.close}. This
   * lets worker threads write their results in parallel; `close` checks that the file reached
   * the sink's final position.
   */
  reserve?(length: number): FileRange;
  /** Finish: flush and (for files) fsync and rename into place. */
  close(): Promise<void>;
  /** Give up: discard everything written (for files, remove the partial file). Safe to call twice. */
  abort(): Promise<void>;
}

/** A sink that collects everything in memory (for tests and small outputs). */
export interface MemorySink extends ByteSink {
  /** All bytes written so far, as one array. */
  bytes(): Uint8Array;
}

/**
 * A sink that keeps the bytes in memory.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * const sink = memorySink();
 * await sink.write(new Uint8Array([1, 2]));
 * await sink.close();
 * console.log(sink.bytes()); // Uint8Array [1, 2]
 * ```
 */
export function memorySink(name = "<memory>"): MemorySink {
  let chunks: Uint8Array[] = [];
  let position = 0;
  return {
    name,
    get position() {
      return position;
    },
    write(bytes) {
      chunks.push(bytes.slice());
      position += bytes.byteLength;
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    abort() {
      chunks = [];
      position = 0;
      return Promise.resolve();
    },
    bytes() {
      const out = new Uint8Array(position);
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.byteLength;
      }
      return out;
    },
  };
}
