/**
 * The web Worker behind {@link WorkerPool}: runs one {@link PoolTask} per message, in order, and
 * replies with its result (buffers transferred) or with the error's name and message.
 * @module
 */
import { type PoolReply, type PoolTask, runPoolTask } from "./pool.ts";
import { loadFileAccess } from "./file_values.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<PoolTask>) => void) | null;
  postMessage(message: PoolReply, transfer: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

function run(task: PoolTask): void {
  try {
    const result = runPoolTask(task);
    const transfer = [result.out, result.rowStats, result.input].filter((b) => b !== undefined);
    scope.postMessage({ id: task.id, ok: true, ...result }, transfer);
  } catch (err) {
    const name = err instanceof Error ? err.name : "Error";
    const message = err instanceof Error ? err.message : String(err);
    scope.postMessage({ id: task.id, ok: false, name, message }, []);
  }
}

// Tasks run in arrival order; the first one that reads or writes a file waits for `node:fs` to
// load, and the tasks behind it wait their turn.
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e: MessageEvent<PoolTask>) => {
  const task = e.data;
  queue = queue.then(async () => {
    // a failure to load surfaces in runPoolTask
    if (task.file || task.target) await loadFileAccess().catch(() => {});
    run(task);
  });
};
