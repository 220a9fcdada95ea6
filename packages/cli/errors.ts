/**
 * Exit codes and the usage error of the `quantx` command.
 * @module
 */

/** Exit codes, as DESIGN.md §5 fixes them. */
export const ExitCode = {
  /** Done. */
  ok: 0,
  /** Failed: the message names the file and the problem. */
  failed: 1,
  /** Bad usage: unknown command, flag or value. */
  usage: 2,
  /** Interrupted by SIGINT. */
  interrupted: 130,
  /** Terminated by SIGTERM. */
  terminated: 143,
} as const;

/** Bad command-line usage (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
