/**
 * The terminal progress line: tensor i/n, bytes done, MB/s and ETA, redrawn in place on stderr.
 * Silent when stderr is not a terminal or with `--quiet`.
 * @module
 */
import type { ProgressEvent } from "@quantx/core";

/** Human-readable byte count (1000-based, as file managers show). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n, i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

/** `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/** One progress line for an event, `elapsed` seconds after the start, at most `width` columns. */
export function progressLine(e: ProgressEvent, elapsed: number, width = 100): string {
  const rate = elapsed > 0 ? e.bytesDone / elapsed : 0;
  const eta = rate > 0 ? (e.bytesTotal - e.bytesDone) / rate : NaN;
  const pct = e.bytesTotal ? Math.min(100, (100 * e.bytesDone) / e.bytesTotal) : 0;
  const n = String(e.tensorCount);
  const head =
    `[${String(e.tensorIndex + 1).padStart(n.length)}/${n}] ${pct.toFixed(0).padStart(3)}% ` +
    `${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)} ` +
    `${(rate / 1e6).toFixed(0)} MB/s ETA ${formatDuration(eta)} `;
  const room = Math.max(0, width - head.length);
  const name = e.tensorName.length > room ? "…" + e.tensorName.slice(-(room - 1)) : e.tensorName;
  return (head + (room > 1 ? name : "")).slice(0, width);
}

/** Draws progress events on a terminal stream; a no-op when disabled. */
export class ProgressBar {
  #start = performance.now();
  #last = 0;
  #drawn = false;
  #encoder = new TextEncoder();

  constructor(
    private readonly enabled: boolean,
    private readonly write: (bytes: Uint8Array) => void,
    private readonly columns: () => number = () => 100,
  ) {}

  /** Show an event (redraws at most ten times a second, always for the last one). */
  update = (e: ProgressEvent): void => {
    if (!this.enabled) return;
    const now = performance.now();
    const last = e.bytesDone >= e.bytesTotal && e.tensorIndex + 1 >= e.tensorCount;
    if (!last && now - this.#last < 100) return;
    this.#last = now;
    const line = progressLine(e, (now - this.#start) / 1000, this.columns() - 1);
    this.write(this.#encoder.encode(`\r\x1b[2K${line}`));
    this.#drawn = true;
  };

  /** Erase the line (before printing results or errors). */
  clear(): void {
    if (this.#drawn) this.write(this.#encoder.encode("\r\x1b[2K"));
    this.#drawn = false;
  }
}
