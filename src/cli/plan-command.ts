import type { Checkpoint } from "../checkpoint/checkpoint.js";
import { parseConfigText } from "../config/load.js";
import { loadConfigFile } from "../config/load-file.js";
import type { LoadingConfig } from "../config/types.js";
import { LoadError } from "../errors.js";
import { openCheckpointFile } from "../node.js";
import {
  describeOptimizer,
  findOptimizerStates,
  parseTorchOptimizerState,
} from "../state/torch-optimizer.js";
import { findSchedulerStates, toSchedulerState } from "../state/torch-scheduler.js";
import type { LoadPlan, PlanEntry } from "../strategies/plan.js";
import { strategyNames } from "../strategies/registry.js";
import { modelFromStateDict } from "../targets/from-state-dict.js";
import { MemoryOptimizer, MemoryScheduler } from "../targets/memory.js";
import type { Targets } from "../targets/types.js";
import { formatBytes, formatNumber, renderTable } from "./format.js";

export interface PlanCommandOptions {
  source: string;
  target: string;
  config?: string;
  set?: string[];
  json?: boolean;
  strict?: boolean;
  allowGlobal?: string[];
}

/** Reads --config and --set into a resolved loading config (weights_only when nothing says otherwise). */
export async function resolveCliConfig(
  options: PlanCommandOptions,
  warn: (line: string) => void,
): Promise<LoadingConfig> {
  const common = {
    overrides: options.set ?? [],
    knownTypes: strategyNames(),
    defaultType: "weights_only",
  };
  const parsed = options.config
    ? await loadConfigFile(options.config, common)
    : parseConfigText("{}", common);
  for (const warning of parsed.warnings) warn(warning);
  return parsed.config.checkpoint.loading;
}

/**
 * The targets `--target FILE` stands for: a model with the file's parameter names, shapes and
 * values; and, when either file carries optimizer or scheduler state, in-memory optimizer and
 * scheduler targets of that kind, fresh.
 */
export async function targetsFromFile(target: Checkpoint, source: Checkpoint): Promise<Targets> {
  const stateDict = target.stateDict();
  if (!stateDict) {
    throw new LoadError("NO_TARGET_MODEL", "the target file holds no model state dict", {
      file: target.name,
      hint: "--target must be a checkpoint of the model to load into (e.g. a freshly initialised model saved with torch.save(model.state_dict()) or as safetensors).",
    });
  }
  // The target's own optimizer names its parameters: everything else is a buffer.
  const ownOptimizer = findOptimizerStates(target.root)[0];
  const ownParsed = ownOptimizer
    ? parseTorchOptimizerState(ownOptimizer.value, ownOptimizer.path)
    : undefined;
  const names = ownParsed?.groups.flatMap((g) => g.paramNames ?? []) ?? [];
  const known = names.filter((name) => stateDict.tensors.has(name));
  const parameterNames = known.length > 0 ? new Set(known) : undefined;
  const model = await modelFromStateDict(
    stateDict.tensors,
    parameterNames ? { parameterNames } : {},
  );
  const targets: Targets = { model };
  const sourceOptimizer = findOptimizerStates(source.root)[0];
  const optimizerType =
    (ownParsed && describeOptimizer(ownParsed)) ??
    (sourceOptimizer
      ? describeOptimizer(parseTorchOptimizerState(sourceOptimizer.value, sourceOptimizer.path))
      : null);
  if (optimizerType) {
    const params = model.parameters();
    targets.optimizer = new MemoryOptimizer(
      optimizerType,
      [{ params: params.filter((p) => p.kind === "parameter").map((p) => p.name), hyper: {} }],
      { params },
    );
  }
  const ownScheduler = findSchedulerStates(target.root)[0];
  if (ownScheduler || findSchedulerStates(source.root).length > 0) {
    targets.scheduler = new MemoryScheduler(
      "torch",
      ownScheduler ? await toSchedulerState(ownScheduler.value, ownScheduler.path) : {},
    );
  }
  return targets;
}

/** Opens both files; the caller closes them. */
export async function openPair(
  options: PlanCommandOptions,
): Promise<{ source: Checkpoint; target: Checkpoint }> {
  const open = { strict: options.strict === true, allowGlobals: options.allowGlobal ?? [] };
  const source = await openCheckpointFile(options.source, open);
  try {
    return { source, target: await openCheckpointFile(options.target, open) };
  } catch (error) {
    await source.close();
    throw error;
  }
}

/** The `--json` document of a plan. */
export function planJson(plan: LoadPlan): unknown {
  return {
    strategy: plan.strategy,
    source: plan.source,
    entries: plan.entries.map((e) => ({
      target: e.target,
      source: e.source,
      action: e.action,
      reason: e.reason,
      sourceShape: e.sourceShape,
      targetShape: e.targetShape,
      sourceDtype: e.sourceDtype,
      targetDtype: e.targetDtype,
      conversion: e.conversion,
      overlap: e.overlap,
      frozen: e.frozen,
    })),
    unexpected: plan.unexpected,
    keyTransforms: plan.keyTransforms,
    trainingState: plan.trainingState,
    optimizer: plan.optimizer,
    scheduler: plan.scheduler,
    violations: plan.violations,
  };
}

function layerOf(name: string): [string, string] {
  const cut = name.lastIndexOf(".");
  return cut < 0 ? ["", name] : [name.slice(0, cut), name.slice(cut + 1)];
}

function shapeText(entry: PlanEntry): string {
  const target = `[${entry.targetShape.join(", ")}]`;
  if (!entry.sourceShape) return target;
  const source = `[${entry.sourceShape.join(", ")}]`;
  return source === target ? target : `${source} → ${target}`;
}

function dtypeText(entry: PlanEntry): string {
  if (!entry.conversion) return entry.targetDtype;
  return `${entry.conversion.from} → ${entry.conversion.to}${entry.conversion.lossy ? " (lossy)" : ""}`;
}

/** Human view: a table of actions grouped by layer, the rest of the run, and a summary line. */
export function renderPlan(plan: LoadPlan, sourceBytes: (entry: PlanEntry) => number): string {
  const lines: string[] = [];
  lines.push(
    `${plan.strategy}: ${plan.source.file} (${plan.source.format}${plan.source.stateDictPath.length ? `, state dict at '${plan.source.stateDictPath.join("/")}'` : ""})`,
  );
  for (const t of plan.keyTransforms) {
    lines.push(`  keys: '${t.from}' → '${t.to}' for ${t.count} key(s)`);
  }
  lines.push("");
  const rows: string[][] = [
    ["  layer", "param", "action", "from", "shape", "dtype", "frozen", "reason"],
  ];
  let previousLayer: string | undefined;
  for (const entry of plan.entries) {
    const [layer, param] = layerOf(entry.target);
    rows.push([
      `  ${layer === previousLayer ? "" : layer || "(top)"}`,
      param,
      entry.action,
      entry.source && entry.source !== entry.target ? entry.source : entry.source ? "=" : "",
      shapeText(entry),
      dtypeText(entry),
      entry.frozen ? "yes" : "",
      entry.transform ? `${entry.reason}; ${entry.transform}` : entry.reason,
    ]);
    previousLayer = layer;
  }
  lines.push(...renderTable(rows));
  if (plan.unexpected.length > 0) {
    lines.push("", `In the checkpoint but not loaded (${plan.unexpected.length}):`);
    lines.push(
      ...renderTable(
        plan.unexpected.map((u) => [`  ${u.source}`, u.dtype, `[${u.shape.join(", ")}]`, u.reason]),
      ),
    );
  }
  lines.push("");
  if (plan.optimizer) {
    const o = plan.optimizer;
    const mapping = o.mapping ? ` (names by ${o.mapping.replace("_", " ")})` : "";
    lines.push(`Optimizer:      ${o.action} — ${o.reason}${mapping}`);
  }
  if (plan.scheduler)
    lines.push(`Scheduler:      ${plan.scheduler.action} — ${plan.scheduler.reason}`);
  const ts = plan.trainingState;
  const best = ts.value.bestMetric === null ? "none" : formatNumber(ts.value.bestMetric);
  lines.push(
    `Training state: ${ts.action} — ${ts.reason}: epoch ${ts.value.epoch}, global step ${ts.value.globalStep}, best metric ${best}`,
  );
  const counts = new Map<string, number>();
  for (const e of plan.entries) counts.set(e.action, (counts.get(e.action) ?? 0) + 1);
  const bytes = plan.entries
    .filter((e) => e.action === "load")
    .reduce((sum, e) => sum + sourceBytes(e), 0);
  const summary = ["load", "skip", "reset", "keep", "missing"]
    .map((a) => `${counts.get(a) ?? 0} ${a}`)
    .join(", ");
  const frozen = plan.entries.filter((e) => e.frozen).length;
  lines.push("");
  lines.push(
    `Summary: ${summary}; ${plan.unexpected.length} unexpected; ${frozen} frozen; ${formatBytes(bytes)} to read.`,
  );
  if (plan.violations.length > 0) {
    lines.push("", `Cannot apply (${plan.violations.length} problem(s)):`);
    for (const v of plan.violations) lines.push(`  - ${v}`);
  } else {
    lines.push("The plan can be applied.");
  }
  return lines.join("\n");
}
