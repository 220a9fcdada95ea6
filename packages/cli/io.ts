/**
 * The command's view of the outside world (streams, terminal, interrupt signal), injectable so
 * that tests can run commands in-process.
 * @module
 */
import { ProgressBar } from "./progress.ts";

/** Streams and signals a command uses. */
export interface Io {
  /** Write to stdout. */
  out(text: string): void;
  /** Write to stderr. */
  err(text: string): void;
  /** Whether stderr is a terminal (progress is drawn only then). */
  stderrIsTerminal: boolean;
  /** Aborted on SIGINT. */
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
  try {
    Deno.addSignalListener("SIGINT", onSigint);
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
