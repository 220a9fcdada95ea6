/** A broken custom worker for the pool's tests: it answers every task with another task's id. */
import { type PoolTask, taskReply } from "../pool.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<PoolTask>) => void) | null;
  postMessage(message: unknown, transfer: Transferable[]): void;
};

scope.onmessage = (e) => {
  const { reply, transfer } = taskReply(e.data);
  scope.postMessage({ ...reply, id: reply.id + 1000 }, transfer);
};
