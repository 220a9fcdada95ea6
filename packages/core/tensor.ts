/**
 * The tensor model shared by every container format.
 * @module
 */

/** One tensor as a container describes it, before any data is read. */
export interface TensorInfo {
  /** Name as stored in the file. */
  name: string;
  /** Shape in the file's own convention (PyTorch order for safetensors, ggml `ne` order for GGUF). */
  shape: number[];
  /** Element type, lower case: a safetensors dtype (`f32`, `bf16`, `u8`, ...) or a ggml type name. */
  dtype: string;
  /** Bytes of data the tensor occupies in the file. */
  byteLength: number;
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
