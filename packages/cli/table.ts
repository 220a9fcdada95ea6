/**
 * Plain-text tables for terminal output.
 * @module
 */

/** Format rows as aligned columns; `right[i]` right-aligns column i. */
export function table(header: string[], rows: string[][], right: boolean[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    "  " + cells.map((c, i) => right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])).join("  ")
      .trimEnd() +
    "\n";
  return line(header) + rows.map(line).join("");
}
