/**
 * The web Worker behind {@link WorkerPool}: runs one {@link PoolTask} per message and replies with
 * its result (buffers transferred) or with the error's name and message.
 * @module
 */
import { type PoolReply, type PoolTask, runPoolTask } from "./pool.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<PoolTask>) => void) | null;
  postMessage(message: PoolReply, transfer: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (e: MessageEvent<PoolTask>) => {
  const task = e.data;
  try {
    const { out, rowStats } = runPoolTask(task);
    const transfer: Transferable[] = rowStats ? [out, rowStats] : [out];
    scope.postMessage({ id: task.id, ok: true, out, rowStats }, transfer);
  } catch (err) {
    const name = err instanceof Error ? err.name : "Error";
    const message = err instanceof Error ? err.message : String(err);
    scope.postMessage({ id: task.id, ok: false, name, message }, []);
  }
};
