import type { Checkpoint } from "../checkpoint/checkpoint.js";
import type { LoadingConfig } from "../config/types.js";
import { compileKeyPatterns, patternsMatchingNothing } from "../keys/globs.js";
import { matchStateDictKeys } from "../keys/match.js";
import type { TrainingState } from "../state/training-state.js";
import type { ParameterInfo, Targets } from "../targets/types.js";
import { canConvert, isLossy } from "../tensors/convert.js";
import { formatShape, sameShape } from "../tensors/shape.js";
import type { LoadPlan, PlanEntry, UnexpectedKey } from "./plan.js";
import {
  attachHandles,
  type PlanHandles,
  planOptimizer,
  planScheduler,
  planTrainingState,
} from "./plan-state.js";
import { plainSource, type SourceStateDict, type SourceTensor } from "./source-tensor.js";

/** What a strategy does with each part of the run; the parameter rules are shared by all. */
export interface StrategyPolicy {
  name: string;
  optimizer: "keep" | "reset" | "restore";
  scheduler: "keep" | "reset" | "restore";
  trainingState: "keep" | "reset" | "restore";
  /** Whether `reset_layers` means anything for this strategy. */
  resetLayers: boolean;
}

export interface PlanInput {
  checkpoint: Checkpoint;
  targets: Targets;
  config: LoadingConfig;
  trainingState: TrainingState;
  /** The state dict as an earlier stage mapped it (layouts, names); default: the checkpoint's own. */
  sourceStateDict?: SourceStateDict | undefined;
}

/** The model's state dict in the checkpoint, each tensor as a SourceTensor. */
export function sourceStateDict(checkpoint: Checkpoint): SourceStateDict {
  const found = checkpoint.requireStateDict();
  const tensors = new Map(
    [...found.tensors].map(([key, tensor]) => [key, plainSource(key, tensor)]),
  );
  return { path: [...found.path], tensors, checkpointKeys: [...found.tensors.keys()] };
}

/**
 * Builds the LoadPlan for a strategy without changing anything: matches checkpoint keys to the
 * model's parameters, decides an action for each, and plans optimizer, scheduler and training
 * state. Problems that forbid the load are collected in `violations`, not thrown, so the whole
 * picture can be shown.
 */
export async function buildPlan(input: PlanInput, policy: StrategyPolicy): Promise<LoadPlan> {
  const { checkpoint, targets, config } = input;
  const source = input.sourceStateDict ?? sourceStateDict(checkpoint);
  const params = targets.model.parameters();
  const violations: string[] = [];

  const sourceInfo = new Map(
    [...source.tensors].map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype }]),
  );
  const targetInfo = new Map(params.map((p) => [p.name, { shape: p.shape, dtype: p.dtype }]));
  const match = matchStateDictKeys(sourceInfo, targetInfo, { keyMap: config.key_map });

  const included = sourceFilter(config, [...source.tensors.keys()], violations);
  const resetPatterns = policy.resetLayers ? config.reset_layers : [];
  if (resetPatterns.length > 0) {
    for (const pattern of patternsMatchingNothing(
      resetPatterns,
      params.map((p) => p.name),
    )) {
      violations.push(
        `reset_layers pattern '${pattern}' matches no parameter of the model (a typo would silently reset nothing)`,
      );
    }
  }
  const isReset = compileKeyPatterns(resetPatterns);
  const freezePatterns = config.freeze;
  for (const pattern of patternsMatchingNothing(
    freezePatterns,
    params.map((p) => p.name),
  )) {
    violations.push(`freeze pattern '${pattern}' matches no parameter of the model`);
  }
  const isFrozenByConfig = compileKeyPatterns(freezePatterns);

  const pairByTarget = new Map(match.pairs.map((p) => [p.target, p]));
  const entries: PlanEntry[] = params.map((param) => {
    const pair = pairByTarget.get(param.name);
    const tensor = pair ? source.tensors.get(pair.source)! : undefined;
    const entry = planParameter(param, pair?.source ?? null, tensor, {
      config,
      included: pair ? included(pair.source) : true,
      reset: isReset(param.name),
      violations,
    });
    const frozenNow = !param.trainable && param.kind === "parameter";
    entry.frozen =
      param.kind === "parameter" &&
      (frozenNow ||
        isFrozenByConfig(param.name) ||
        (config.freeze_loaded && entry.action === "load"));
    return entry;
  });

  const unused = source.unused ?? new Map<string, string>();
  const expected = (key: string) => !included(key) || unused.has(key);
  const unexpected: UnexpectedKey[] = match.unexpected.map((key) => {
    const t = source.tensors.get(key)!;
    return {
      source: key,
      shape: [...t.shape],
      dtype: t.dtype,
      reason:
        unused.get(key) ??
        (included(key) ? "no parameter of the model matches it" : "excluded by include/exclude"),
    };
  });
  if (config.strict) {
    const stray = unexpected.filter((u) => !expected(u.source));
    if (stray.length > 0) {
      violations.push(
        `strict: ${stray.length} checkpoint key(s) match no model parameter: ${listSome(stray.map((u) => u.source))} (leave them out with checkpoint.loading.exclude, or set strict: false)`,
      );
    }
  }

  // Optimizer state is keyed by checkpoint keys: map each to its target through the match.
  const targetBySource = new Map<string, string>();
  for (const pair of match.pairs) {
    const value = source.tensors.get(pair.source)!;
    if (value.sources.length === 1) targetBySource.set(value.sources[0]!, pair.target);
  }
  const handles: PlanHandles = { sourceTensors: source.tensors };
  const optimizer = await planOptimizer(input, policy, {
    source,
    toTarget: (sourceKey) => targetBySource.get(sourceKey),
    sourceForTarget: (target) => {
      const pair = pairByTarget.get(target);
      return pair ? source.tensors.get(pair.source) : undefined;
    },
    violations,
    handles,
  });
  const scheduler = await planScheduler(input, policy, violations, handles);
  const trainingState = await planTrainingState(input, policy, violations);

  return attachHandles(
    {
      strategy: policy.name,
      source: { file: checkpoint.name, format: checkpoint.format, stateDictPath: source.path },
      entries,
      unexpected,
      keyTransforms: match.transforms,
      optimizer,
      scheduler,
      trainingState,
      violations,
    },
    handles,
  );
}

function listSome(keys: string[], max = 8): string {
  const shown = keys.slice(0, max).map((k) => `'${k}'`);
  return keys.length > max ? `${shown.join(", ")} and ${keys.length - max} more` : shown.join(", ");
}

/** include/exclude as one predicate over source keys; patterns that select nothing are violations. */
function sourceFilter(
  config: LoadingConfig,
  keys: string[],
  violations: string[],
): (key: string) => boolean {
  for (const [name, patterns] of [
    ["include", config.include],
    ["exclude", config.exclude],
  ] as const) {
    for (const pattern of patternsMatchingNothing(patterns, keys)) {
      violations.push(`${name} pattern '${pattern}' matches no key of the checkpoint`);
    }
  }
  const include = config.include.length > 0 ? compileKeyPatterns(config.include) : () => true;
  const exclude = compileKeyPatterns(config.exclude);
  return (key) => include(key) && !exclude(key);
}

interface ParameterRules {
  config: LoadingConfig;
  included: boolean;
  reset: boolean;
  violations: string[];
}

/** The action for one target parameter, and why. */
function planParameter(
  param: ParameterInfo,
  sourceKey: string | null,
  tensor: SourceTensor | undefined,
  rules: ParameterRules,
): PlanEntry {
  const entry: PlanEntry = {
    target: param.name,
    source: sourceKey,
    action: "load",
    reason: "",
    sourceShape: tensor ? [...tensor.shape] : null,
    targetShape: [...param.shape],
    sourceDtype: tensor?.dtype ?? null,
    targetDtype: param.dtype,
    conversion: null,
    overlap: null,
    transform: tensor?.transform ?? null,
    frozen: false,
  };
  const { config, violations } = rules;
  if (rules.reset) {
    entry.action = "reset";
    entry.reason = "matches reset_layers: keeps the model's own initialisation";
    return entry;
  }
  if (!tensor || !sourceKey) {
    if (config.strict) {
      entry.action = "missing";
      entry.reason = "not in the checkpoint";
      violations.push(`strict: model parameter '${param.name}' is not in the checkpoint`);
    } else {
      entry.action = "keep";
      entry.reason = "not in the checkpoint; keeps its current value";
    }
    return entry;
  }
  if (!rules.included) {
    entry.action = "skip";
    entry.reason = "excluded by include/exclude";
    return entry;
  }
  if (!canConvert(tensor.dtype, param.dtype)) {
    entry.action = "skip";
    entry.reason = `cannot convert ${tensor.dtype} to ${param.dtype}`;
    violations.push(
      `'${sourceKey}' is ${tensor.dtype}, which cannot be converted to the model's ${param.dtype}`,
    );
    return entry;
  }
  if (tensor.dtype !== param.dtype) {
    entry.conversion = {
      from: tensor.dtype,
      to: param.dtype,
      lossy: isLossy(tensor.dtype, param.dtype),
    };
  }
  if (sameShape(tensor.shape, param.shape)) {
    entry.reason = sourceKey === param.name ? "same name and shape" : "same shape";
    return entry;
  }
  const shapes = `checkpoint ${formatShape(tensor.shape)} vs model ${formatShape(param.shape)}`;
  if (config.mismatch === "overlap" && tensor.shape.length === param.shape.length) {
    entry.overlap = param.shape.map((dim, d) => Math.min(dim, tensor.shape[d]!));
    entry.reason = `shape mismatch (${shapes}): copies the overlapping block ${formatShape(entry.overlap)}, the rest keeps its current value`;
    return entry;
  }
  if (config.mismatch === "error" || config.strict) {
    entry.action = "skip";
    entry.reason = `shape mismatch (${shapes})`;
    violations.push(`shape mismatch for '${param.name}': ${shapes}`);
    return entry;
  }
  entry.action = "skip";
  entry.reason =
    config.mismatch === "overlap"
      ? `shape mismatch (${shapes}); ranks differ, so no overlap can be copied`
      : `shape mismatch (${shapes}): skipped`;
  return entry;
}
