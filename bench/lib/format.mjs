/** Human-readable numbers and plain-text tables. */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export function formatBytes(bytes) {
  if (bytes === undefined || bytes === null || !Number.isFinite(bytes)) return "—";
  const sign = bytes < 0 ? "-" : "";
  const n = Math.abs(bytes);
  if (n >= GiB) return `${sign}${(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${sign}${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${sign}${(n / 1024).toFixed(1)} KiB`;
  return `${sign}${n} B`;
}

export function formatTime(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return "—";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Bytes per second, in MiB/s or GiB/s. */
export function formatRate(bytesPerSecond) {
  if (bytesPerSecond === undefined || bytesPerSecond === null || !Number.isFinite(bytesPerSecond))
    return "—";
  if (bytesPerSecond >= GiB) return `${(bytesPerSecond / GiB).toFixed(2)} GiB/s`;
  return `${(bytesPerSecond / MiB).toFixed(0)} MiB/s`;
}

export function formatPercent(ratio) {
  if (ratio === undefined || ratio === null || !Number.isFinite(ratio)) return "—";
  const percent = ratio * 100;
  const size = Math.abs(percent);
  if (size !== 0 && size < 0.1) return `${percent.toPrecision(2)} %`;
  return `${percent.toFixed(size < 1 ? 2 : size < 10 ? 1 : 0)} %`;
}

/** Drops the columns that are empty ("—" or "") in every row. */
export function dropEmptyColumns(headers, rows) {
  const keep = headers.map((_, c) => rows.some((row) => !["", "—"].includes(String(row[c] ?? ""))));
  const pick = (row) => row.filter((_, c) => keep[c]);
  return { headers: pick(headers), rows: rows.map(pick) };
}

/** A table with a header row, columns padded; numbers-looking columns right-aligned. */
export function renderTable(headers, rows) {
  const cells = [headers, ...rows].map((row) => row.map((cell) => String(cell ?? "")));
  const widths = headers.map((_, c) => Math.max(...cells.map((row) => row[c].length)));
  const rightAligned = headers.map((_, c) =>
    rows.every((row) => /^[-—\d]/.test(String(row[c] ?? "—"))),
  );
  const line = (row) =>
    row
      .map((cell, c) => (rightAligned[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join("\n");
}

/** The same table as Markdown, for docs/benchmarks.md, padded as Markdown formatters pad it. */
export function renderMarkdownTable(headers, rows) {
  const escapeCell = (cell) =>
    String(cell ?? "")
      .replaceAll("|", "\\|")
      // `<file>` would be read as an HTML tag; `< 64 MiB` is fine as it is.
      .replace(/<(?=[A-Za-z/!?])/g, "&lt;");
  const cells = [headers, ...rows].map((row) => row.map(escapeCell));
  const widths = headers.map((_, c) => Math.max(3, ...cells.map((row) => row[c].length)));
  const line = (row) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(" | ")} |`;
  return [
    line(cells[0]),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...cells.slice(1).map(line),
  ].join("\n");
}
