import {
  dropEmptyColumns,
  formatBytes,
  formatPercent,
  formatRate,
  formatTime,
  renderMarkdownTable,
  renderTable,
} from "./format.mjs";

/** Turning section results into the printed tables, the Markdown version and the JSON record. */

export const HEADERS = [
  "contender",
  "time (median)",
  "throughput",
  "% of ceiling",
  "extra memory",
  "notes",
];

/** A run whose slowest and fastest rounds differ by more than this share of the median is flagged. */
const NOISY_SPREAD = 0.25;

export function cells(row) {
  const rate = row.bytes && row.ms > 0 ? row.bytes / (row.ms / 1000) : undefined;
  const notes = [row.note];
  if (row.spread > NOISY_SPREAD) notes.push(`noisy: rounds spread ${formatPercent(row.spread)}`);
  return [
    row.contender,
    formatTime(row.ms),
    formatRate(rate),
    formatPercent(row.ratio),
    formatBytes(row.extra),
    notes.filter(Boolean).join("; "),
  ];
}

export function targetCells(target) {
  return [target.pass ? "PASS" : "MISS", target.what, target.measured];
}

export function printSection(result, print) {
  for (const table of result.tables) {
    print(`\n${table.title}`);
    const shown = dropEmptyColumns(HEADERS, table.rows.map(cells));
    print(renderTable(shown.headers, shown.rows));
  }
  if (result.targets.length > 0) {
    print("");
    print(renderTable(["", "target", "measured"], result.targets.map(targetCells)));
  }
  for (const note of result.notes ?? []) print(`  · ${note}`);
}

export function markdownReport(record) {
  const lines = [
    `Run of ${record.date} on ${record.machine.cpus}× ${record.machine.cpuModel}, ${formatBytes(record.machine.totalMemory)} RAM,`,
    `Node ${record.machine.node}; ${record.torch.status}; ${record.options.rounds} interleaved rounds, medians;`,
    `load average ${record.loadAverage.start.map((l) => l.toFixed(2)).join(" ")} at start, ${record.loadAverage.end.map((l) => l.toFixed(2)).join(" ")} at end.`,
    "",
  ];
  for (const section of record.sections) {
    lines.push(`### ${section.title}`, "");
    if (section.error) {
      lines.push(`Failed: ${section.error}`, "");
      continue;
    }
    for (const table of section.tables) {
      const shown = dropEmptyColumns(HEADERS, table.rows.map(cells));
      lines.push(`${table.title}`, "", renderMarkdownTable(shown.headers, shown.rows), "");
    }
    if (section.targets.length > 0) {
      lines.push(
        renderMarkdownTable(["", "target", "measured"], section.targets.map(targetCells)),
        "",
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
