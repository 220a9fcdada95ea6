/**
 * Chunked tensor reading: whole rows at a time, bounded in size, with the next chunk read while
 * the current one is processed.
 * @module
 */
import type { Weights, WeightTensor } from "./weights.ts";
import { rowLength, tensorElements } from "./weights.ts";

/** Default chunk size in elements (2 MB of float32). */
export const CHUNK_ELEMENTS = 1 << 19;

const EMPTY = new Float32Array(0);

/** One chunk of a tensor: rows `[row, row + rows)`, as float32. */
export interface Chunk {
  /** First row. */
  row: number;
  /** Number of rows. */
  rows: number;
  /** The values, `rows * rowLength` of them (float32, or f16/bf16 bytes with `half`). */
  data: Float32Array;
  /** With the `half` option: the stored f16/bf16 bytes of the values, `data` left empty. */
  half?: Uint8Array;
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
    /** Read f16/bf16 tensors as their stored bytes (`Chunk.half`) through `weights.readHalf`. */
    half?: boolean;
  } = {},
): AsyncGenerator<Chunk> {
  const cols = rowLength(tensor);
  const totalRows = tensorElements(tensor) / cols;
  const multiple = options.rowMultiple ?? 1;
  const per = Math.max(
    multiple,
    Math.floor((options.chunkElements ?? CHUNK_ELEMENTS) / cols / multiple) * multiple,
  );
  const read = (row: number) => {
    const rows = Math.min(per, totalRows - row);
    if (options.half && weights.readHalf) {
      return weights.readHalf(tensor.name, row * cols, rows * cols).then((half) => ({
        row,
        rows,
        data: EMPTY,
        half,
      }));
    }
    return weights.readF32(tensor.name, row * cols, rows * cols).then((data) => ({
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
