/**
 * The command's view of the outside world (streams, terminal, interrupt signal), injectable so
 * that tests can run commands in-process.
 * @module
 */
import { ProgressBar } from "./progress.ts";

/** The abort reason's message when SIGTERM (not SIGINT) stopped the command. */
export const TERMINATED = "terminated";

/** Streams and signals a command uses. */
export interface Io {
  /** Write to stdout. */
  out(text: string): void;
  /** Write to stderr. */
  err(text: string): void;
  /** Whether stderr is a terminal (progress is drawn only then). */
  stderrIsTerminal: boolean;
  /** Aborted on SIGINT (reason `interrupted`) or SIGTERM (reason {@link TERMINATED}). */
  signal: AbortSignal;
  /** Make a progress bar (disabled when `quiet` or stderr is not a terminal). */
  progress(quiet: boolean): ProgressBar;
  /** Erase any progress line. */
  clearProgress(): void;
  /** Print stack traces on failure (`QUANTX_DEBUG=1`). */
  debug: boolean;
}

/** The real process: Deno's stdout/stderr, SIGINT -> abort. */
export function systemIo(): Io {
  const controller = new AbortController();
  const enc = new TextEncoder();
  const writeErr = (b: Uint8Array) => {
    Deno.stderr.writeSync(b);
  };
  let bar: ProgressBar | undefined;
  const onSigint = () => controller.abort(new Error("interrupted"));
  const onSigterm = () => controller.abort(new Error(TERMINATED));
  try {
    Deno.addSignalListener("SIGINT", onSigint);
    Deno.addSignalListener("SIGTERM", onSigterm);
  } catch {
    // Signals are unavailable on some platforms; Ctrl+C then ends the process directly.
  }
  const isTty = Deno.stderr.isTerminal();
  return {
    out: (t) => writeAll(Deno.stdout, enc.encode(t)),
    err: (t) => {
      bar?.clear();
      writeAll(Deno.stderr, enc.encode(t));
    },
    stderrIsTerminal: isTty,
    signal: controller.signal,
    progress(quiet) {
      bar = new ProgressBar(isTty && !quiet, writeErr, () => {
        try {
          return Deno.consoleSize().columns;
        } catch {
          return 100;
        }
      });
      return bar;
    },
    clearProgress: () => bar?.clear(),
    debug: Deno.env.get("QUANTX_DEBUG") === "1",
  };
}

function writeAll(w: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
}
