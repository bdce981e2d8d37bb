/** Text helpers for the CLI's human output. */

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** A number for a table: short, exact enough to compare by eye. */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  return String(Number(value.toPrecision(6)));
}

/** Left-aligned columns separated by two spaces; `right` lists columns to right-align. */
export function renderTable(rows: string[][], right: ReadonlySet<number> = new Set()): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) =>
        right.has(i)
          ? cell.padStart(widths[i]!)
          : i === row.length - 1
            ? cell
            : cell.padEnd(widths[i]!),
      )
      .join("  ")
      .trimEnd(),
  );
}

/** JSON for numbers that may be NaN or infinite: as the strings "nan", "inf", "-inf". */
export function jsonNumber(value: number): number | string {
  return Number.isFinite(value) ? value : formatNumber(value);
}
