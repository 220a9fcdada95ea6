/**
 * The web Worker behind {@link WorkerPool}: runs one {@link PoolTask} per message and replies with
 * its result (buffers transferred) or with the error's name and message.
 * @module
 */
import { type PoolReply, type PoolTask, taskReply } from "./pool.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<PoolTask>) => void) | null;
  postMessage(message: PoolReply, transfer: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (e: MessageEvent<PoolTask>) => {
  const { reply, transfer } = taskReply(e.data);
  scope.postMessage(reply, transfer);
};
