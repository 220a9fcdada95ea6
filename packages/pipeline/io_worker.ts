/**
 * The pipeline's worker: the kernels' tasks, plus chunks it reads from the input file and writes
 * into the output file itself ({@link FileTask}), so that a whole-model job moves only byte ranges
 * and error sums between threads.
 * @module
 */
import { type FileRange, readFileRangeSync, writeFileRangeSync } from "@quantx/core";
import {
  type PoolReply,
  type PoolResult,
  type PoolTask,
  rowSize,
  runPoolTask,
  taskReply,
} from "@quantx/kernels";
import { FILE_VALUE_BYTES, type FileValues } from "./weights.ts";

/** The `extra` of a pool task this worker runs from files. */
export interface FileTask {
  /** Where the values are. */
  src: FileValues;
  /** Where the quantized bytes go (a reserved range of the output); absent: sent back. */
  target?: FileRange;
}

interface WorkerScope {
  onmessage: ((e: MessageEvent<PoolTask>) => void) | null;
  postMessage(message: PoolReply, transfer: Transferable[]): void;
}

/** The stored bytes and the result of the current chunk (tasks run one at a time). */
let stored = new ArrayBuffer(0);
let result = new Uint8Array(0);

function run(task: PoolTask): PoolResult {
  const io = task.extra as FileTask | undefined;
  if (!io) return runPoolTask(task);
  if (io.src.count !== task.count) {
    throw new RangeError(`io worker: ${io.src.count} values to read for a task of ${task.count}`);
  }
  const length = io.src.count * FILE_VALUE_BYTES[io.src.dtype];
  if (stored.byteLength < length) stored = new ArrayBuffer(length);
  readFileRangeSync(io.src, new Uint8Array(stored, 0, length));
  const input = io.src.dtype === "f32" ? undefined : io.src.dtype;
  const chunk = { ...task, data: stored, input, extra: undefined };
  if (!io.target) {
    const { out, rowStats } = runPoolTask(chunk); // `input` (our buffer) is not sent back
    return { out, rowStats };
  }
  const size = rowSize(task.type, task.count);
  if (result.length < size) result = new Uint8Array(size);
  const { out, rowStats } = runPoolTask(chunk, result);
  writeFileRangeSync(io.target, result.subarray(0, size));
  return { out, rowStats };
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (e: MessageEvent<PoolTask>) => {
  const { reply, transfer } = taskReply(e.data, run);
  scope.postMessage(reply, transfer);
};
