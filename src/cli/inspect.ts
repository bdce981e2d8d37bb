import type { Checkpoint } from "../checkpoint/checkpoint.js";
import { describeValue, formatPath, type TreePath } from "../checkpoint/tree.js";
import type { PyValue } from "../formats/pickle/values.js";
import { type TensorStats, tensorStats } from "../tensors/stats.js";
import { formatBytes, formatCount, formatNumber, jsonNumber, renderTable } from "./format.js";

export interface InspectOptions {
  stats?: boolean;
  /** Show every tensor instead of folding repeated layers. */
  all?: boolean;
}

interface TensorRow {
  path: TreePath;
  dtype: string;
  shape: number[];
  bytes: number;
  stats?: TensorStats | undefined;
}

export interface InspectReport {
  file: string;
  format: string;
  details: Readonly<Record<string, string | number | boolean>>;
  size: number;
  bytesRead: number;
  tensors: TensorRow[];
  trainingState?: { epoch?: number; globalStep?: number; bestMetric?: number; monitor?: string };
  metadata?: Record<string, unknown>;
  opaque?: string[];
  /** What the file holds instead, when it holds no tensors (e.g. bare storages). */
  holds?: string;
}

export async function buildInspectReport(
  checkpoint: Checkpoint,
  options: InspectOptions,
): Promise<InspectReport> {
  // What opening cost, before --stats reads every tensor.
  const bytesRead = checkpoint.bytesRead;
  const tensors: TensorRow[] = [];
  for (const { path, tensor } of checkpoint.tensors()) {
    tensors.push({
      path,
      dtype: tensor.dtype,
      shape: [...tensor.shape],
      bytes: tensor.byteLength,
      stats: options.stats ? await tensorStats(tensor) : undefined,
    });
  }
  const report: InspectReport = {
    file: checkpoint.name,
    format: checkpoint.format,
    details: checkpoint.details,
    size: checkpoint.source.size,
    bytesRead,
    tensors,
  };
  if (tensors.length === 0) report.holds = describeRoot(checkpoint.root);
  const counters = await checkpoint.trainingCounters();
  if (Object.keys(counters).length > 0) report.trainingState = counters;
  const metadata: Record<string, unknown> = {};
  if (checkpoint.metadata) Object.assign(metadata, checkpoint.metadata);
  for (const record of await checkpoint.jsonMetadata()) metadata[record.name] = record.value;
  if (Object.keys(metadata).length > 0) report.metadata = metadata;
  if (checkpoint.opaqueClasses.size > 0) report.opaque = [...checkpoint.opaqueClasses].sort();
  return report;
}

/** `tuple(2): torch.FloatStorage, torch.FloatStorage`: the top-level value and its first items. */
function describeRoot(root: PyValue): string {
  const shown = 8;
  if (!Array.isArray(root) || root.length === 0) return describeValue(root);
  const items = root.slice(0, shown).map((item: PyValue) => describeValue(item));
  const more = root.length > shown ? `, ... (${root.length - shown} more)` : "";
  return `${describeValue(root)}: ${items.join(", ")}${more}`;
}

/** The `--json` document: exactly the fields the CLI promises, NaN/inf as strings. */
export function inspectJson(report: InspectReport): unknown {
  return {
    format: report.format,
    tensors: report.tensors.map((t) => ({
      path: t.path,
      dtype: t.dtype,
      shape: t.shape,
      bytes: t.bytes,
      ...(t.stats
        ? {
            stats: {
              sum: jsonNumber(t.stats.sum),
              min: jsonNumber(t.stats.min),
              max: jsonNumber(t.stats.max),
              mean: jsonNumber(t.stats.mean),
            },
          }
        : {}),
    })),
    ...(report.trainingState ? { trainingState: report.trainingState } : {}),
    ...(report.metadata ? { metadata: report.metadata } : {}),
    ...(report.opaque ? { opaque: report.opaque } : {}),
  };
}

/**
 * Groups of tensors sharing a container (a state dict, an optimizer's per-parameter state...).
 * Numbered levels fold into their parent (`optimizer_states/0/state` holds `3/exp_avg`), so a
 * hundred parameters' moments make one group, not a hundred.
 */
function groupByContainer(rows: TensorRow[]): Map<string, { name: string; row: TensorRow }[]> {
  const groups = new Map<string, { name: string; row: TensorRow }[]>();
  for (const row of rows) {
    let cut = row.path.length - 1;
    while (cut > 1 && typeof row.path[cut - 1] === "number") cut--;
    // Each key shortened on its own, so a long key reads the same in every group under it.
    const container = row.path
      .slice(0, cut)
      .map((segment) => elide(String(segment)))
      .join("/");
    const group = groups.get(container) ?? [];
    groups.set(container, group);
    group.push({ name: formatPath(row.path.slice(cut)), row });
  }
  return groups;
}

/** Long dict keys (Lightning's callback names) shortened in the middle for the human view. */
function elide(text: string, max = 48): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max / 2 - 1)}…${text.slice(text.length - max / 2)}`;
}

/** Folds `layers.0.attn.weight`, `layers.1.attn.weight`... into `layers.{0..1}.attn.weight`. */
function foldRepeated(
  members: { name: string; row: TensorRow }[],
): { name: string; rows: TensorRow[] }[] {
  const folded = new Map<
    string,
    { pattern: string; rows: TensorRow[]; names: string[]; numbers: number[][] }
  >();
  for (const { name, row } of members) {
    const numbers: number[] = [];
    const pattern = name
      .split(/([./])/)
      .map((part) => {
        if (!/^\d+$/.test(part)) return part;
        numbers.push(Number(part));
        return "#";
      })
      .join("");
    const key = `${pattern}|${row.dtype}|${row.shape.join(",")}`;
    const entry = folded.get(key) ?? { pattern, rows: [], names: [], numbers: [] };
    folded.set(key, entry);
    entry.rows.push(row);
    entry.names.push(name);
    entry.numbers.push(numbers);
  }
  return [...folded.values()].map(({ pattern, rows, names, numbers }) => {
    if (rows.length === 1) return { name: names[0]!, rows };
    let slot = 0;
    const label = pattern.replace(/#/g, () => {
      const values = numbers.map((n) => n[slot]!);
      slot++;
      const low = Math.min(...values);
      const high = Math.max(...values);
      return low === high ? String(low) : `{${low}..${high}}`;
    });
    return { name: label, rows };
  });
}

const FOLD_THRESHOLD = 40;

export function renderInspect(report: InspectReport, options: InspectOptions): string {
  const lines: string[] = [];
  const facts = Object.entries(report.details).map(([k, v]) => `${k} ${v}`);
  lines.push(`${report.file}`);
  lines.push(`  format  ${report.format}${facts.length ? ` (${facts.join(", ")})` : ""}`);
  lines.push(
    `  size    ${formatBytes(report.size)}; opening read ${formatBytes(report.bytesRead)}`,
  );
  const total = report.tensors.reduce((sum, t) => sum + t.bytes, 0);
  lines.push("");
  lines.push(`Tensors: ${formatCount(report.tensors.length)}, ${formatBytes(total)}`);
  if (report.holds !== undefined) lines.push(`  none; the file holds ${report.holds}`);
  for (const [container, members] of groupByContainer(report.tensors)) {
    const bytes = members.reduce((sum, m) => sum + m.row.bytes, 0);
    lines.push("");
    lines.push(
      `  ${container || "(top level)"}  ${formatCount(members.length)} ${members.length === 1 ? "tensor" : "tensors"}, ${formatBytes(bytes)}`,
    );
    const entries =
      options.all || members.length <= FOLD_THRESHOLD
        ? members.map(({ name, row }) => ({ name, rows: [row] }))
        : foldRepeated(members);
    const table = entries.map(({ name, rows: members }) => {
      const row = members[0]!;
      const cells = [
        // A file that is one bare tensor has no name for it.
        `    ${name || "(the file's tensor)"}`,
        row.dtype,
        `[${row.shape.join(", ")}]`,
        members.length > 1
          ? `${formatBytes(row.bytes)} ×${members.length}`
          : formatBytes(row.bytes),
      ];
      if (options.stats) {
        const s = row.stats;
        cells.push(
          members.length > 1 || !s
            ? ""
            : `sum ${formatNumber(s.sum)}  min ${formatNumber(s.min)}  max ${formatNumber(s.max)}  mean ${formatNumber(s.mean)}`,
        );
      }
      return cells;
    });
    lines.push(...renderTable(table, new Set([3])));
  }
  const byDtype = new Map<string, { count: number; bytes: number }>();
  for (const t of report.tensors) {
    const entry = byDtype.get(t.dtype) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += t.bytes;
    byDtype.set(t.dtype, entry);
  }
  if (byDtype.size > 0) {
    lines.push("", "By dtype:");
    lines.push(
      ...renderTable(
        [...byDtype].map(([dtype, { count, bytes }]) => [
          `  ${dtype}`,
          `${formatCount(count)} ${count === 1 ? "tensor" : "tensors"}`,
          formatBytes(bytes),
        ]),
        new Set([1, 2]),
      ),
    );
  }
  const state = report.trainingState;
  if (state) {
    const parts: string[] = [];
    if (state.epoch !== undefined) parts.push(`epoch ${state.epoch}`);
    if (state.globalStep !== undefined) parts.push(`global step ${state.globalStep}`);
    if (state.bestMetric !== undefined)
      parts.push(`best ${state.monitor ?? "metric"} ${formatNumber(state.bestMetric)}`);
    lines.push("", `Training: ${parts.join(", ")}`);
  }
  if (report.metadata) {
    lines.push("", "Metadata:");
    for (const [key, value] of Object.entries(report.metadata)) {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      lines.push(`  ${key}: ${text.length > 200 ? `${text.slice(0, 197)}...` : text}`);
    }
  }
  if (report.opaque) {
    lines.push("", "Opaque objects (classes recorded, nothing run):");
    for (const name of report.opaque) lines.push(`  ${name}`);
  }
  return lines.join("\n");
}
