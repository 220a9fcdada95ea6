/**
 * Progress events that long jobs report, shared by the CLI's progress bar, the preview server and
 * the VS Code extension.
 * @module
 */

/** One step of a long job. Byte counts are of output written (or input read when reading). */
export interface ProgressEvent {
  /** What is happening: `"plan"`, `"quantize"`, `"write"`, `"verify"`, ... */
  phase: string;
  /** Index of the tensor being processed (0-based). */
  tensorIndex: number;
  /** Number of tensors in the job. */
  tensorCount: number;
  /** Name of the tensor being processed. */
  tensorName: string;
  /** Bytes done so far in the whole job. */
  bytesDone: number;
  /** Bytes the whole job will process. */
  bytesTotal: number;
}

/** Receives {@link ProgressEvent}s; must return quickly. */
export type ProgressCallback = (event: ProgressEvent) => void;
