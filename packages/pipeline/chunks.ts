/**
 * Chunked tensor reading: whole rows at a time, bounded in size, with the next chunk read while
 * the current one is processed.
 * @module
 */
import type { Weights, WeightTensor } from "./weights.ts";
import { rowLength, tensorElements } from "./weights.ts";

/** Default chunk size in elements (2 MB of float32). */
export const CHUNK_ELEMENTS = 1 << 19;

/**
 * Buffers a job is done with, kept for reading the next chunks into: a job reads gigabytes in
 * chunks of the same few sizes, and a fresh buffer per chunk costs an allocation, zero-filling
 * and page faults for every byte read. At most `max` buffers are kept.
 */
export class SpareBuffers {
  #free: ArrayBuffer[] = [];
  /** Keep at most `max` buffers. */
  constructor(readonly max: number) {}
  /** A kept buffer of exactly `byteLength` bytes, if there is one (it is no longer kept). */
  take(byteLength: number): ArrayBuffer | undefined {
    const i = this.#free.findIndex((b) => b.byteLength === byteLength);
    return i < 0 ? undefined : this.#free.splice(i, 1)[0];
  }
  /** Keep `buffer` for a later {@link SpareBuffers.take}, dropping the oldest beyond `max`. */
  give(buffer: ArrayBuffer | undefined): void {
    if (!buffer || buffer.byteLength === 0) return;
    this.#free.push(buffer);
    if (this.#free.length > this.max) this.#free.shift();
  }
}

/** One chunk of a tensor: rows `[row, row + rows)`, as float32. */
export interface Chunk {
  /** First row. */
  row: number;
  /** Number of rows. */
  rows: number;
  /** The values, `rows * rowLength` of them. */
  data: Float32Array;
}

/**
 * Rows per chunk of a tensor: as many whole rows as fit in `chunkElements` values, rounded down to
 * a multiple of `rowMultiple`, and at least `rowMultiple`.
 */
export function rowsPerChunk(
  tensor: WeightTensor,
  chunkElements: number = CHUNK_ELEMENTS,
  rowMultiple = 1,
): number {
  const cols = rowLength(tensor);
  return Math.max(rowMultiple, Math.floor(chunkElements / cols / rowMultiple) * rowMultiple);
}

/**
 * Iterate a tensor in chunks of whole rows (`rowMultiple` rows at a time at least, e.g. one
 * attention head for a permuted tensor), prefetching the next chunk.
 */
export async function* readChunks(
  weights: Weights,
  tensor: WeightTensor,
  options: {
    chunkElements?: number;
    rowMultiple?: number;
    signal?: AbortSignal;
    /** Buffers to read into when one of the right size is spare. */
    spare?: SpareBuffers;
  } = {},
): AsyncGenerator<Chunk> {
  const cols = rowLength(tensor);
  const totalRows = tensorElements(tensor) / cols;
  const per = rowsPerChunk(tensor, options.chunkElements, options.rowMultiple);
  const read = (row: number) => {
    const rows = Math.min(per, totalRows - row);
    const count = rows * cols;
    const into = options.spare?.take(count * 4);
    return weights.readF32(tensor.name, row * cols, count, into && new Float32Array(into)).then((
      data,
    ) => ({
      row,
      rows,
      data,
    }));
  };
  let next: Promise<Chunk> | undefined = totalRows > 0 ? read(0) : undefined;
  try {
    while (next) {
      options.signal?.throwIfAborted();
      const chunk = await next;
      const after = chunk.row + chunk.rows;
      next = after < totalRows ? read(after) : undefined;
      yield chunk;
    }
  } finally {
    // A prefetch still in flight when the consumer stops must not become an unhandled rejection.
    next?.catch(() => {});
  }
}
