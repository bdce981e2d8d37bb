import { LoadoutError } from "../errors.js";
import { readTrainingState } from "../state/read-training-state.js";
import {
  describeOptimizer,
  findOptimizerStates,
  mapOptimizerToNames,
  parseTorchOptimizerState,
} from "../state/torch-optimizer.js";
import { findSchedulerStates, toSchedulerState } from "../state/torch-scheduler.js";
import { freshTrainingState } from "../state/training-state.js";
import type { SchedulerState } from "../targets/types.js";
import { sameShape } from "../tensors/shape.js";
import type { PlanInput, StrategyPolicy } from "./build-plan.js";
import type { LoadPlan, OptimizerPlan, SchedulerPlan, TrainingStatePlan } from "./plan.js";
import type { SourceStateDict, SourceTensor } from "./source-tensor.js";

type ParsedOptimizer = ReturnType<typeof parseTorchOptimizerState>;

/** What applying a plan needs beyond the plan's plain data; kept out of the plan itself. */
export interface PlanHandles {
  sourceTensors: Map<string, SourceTensor>;
  optimizer?: { parsed: ParsedOptimizer; byIndex: Map<number, string> };
  scheduler?: SchedulerState;
}

const handles = new WeakMap<LoadPlan, PlanHandles>();

export function attachHandles(plan: LoadPlan, value: PlanHandles): LoadPlan {
  handles.set(plan, value);
  return plan;
}

export function handlesOf(plan: LoadPlan): PlanHandles | undefined {
  return handles.get(plan);
}

interface OptimizerContext {
  source: SourceStateDict;
  toTarget: (sourceKey: string) => string | undefined;
  /** The value a target parameter loads from (to check its optimizer state can follow it). */
  sourceForTarget: (target: string) => SourceTensor | undefined;
  violations: string[];
  /** Filled with what apply will need. */
  handles: PlanHandles;
}

/** Adam and AdamW keep the same state; compare optimizer kinds by the state they keep. */
function family(type: string): string {
  const t = type.toLowerCase();
  if (t.startsWith("adam")) return "adam";
  if (t === "sgd" || t === "momentum") return "sgd";
  return t;
}

export async function planOptimizer(
  input: PlanInput,
  policy: StrategyPolicy,
  context: OptimizerContext,
): Promise<OptimizerPlan | null> {
  const target = input.targets.optimizer;
  if (!target) return null;
  const base = { mapping: null, type: target.type, entries: [], sourcePath: null };
  if (policy.optimizer === "keep") {
    return { ...base, action: "keep", reason: `${policy.name} leaves the optimizer as it is` };
  }
  if (policy.optimizer === "reset") {
    return {
      ...base,
      action: "reset",
      reason: "starts fresh: no per-parameter state, hyperparameters as configured",
    };
  }
  const found = findOptimizerStates(input.checkpoint.root);
  if (found.length === 0) {
    context.violations.push(
      `${policy.name}: the checkpoint holds no optimizer state to resume from`,
    );
    return { ...base, action: "restore", reason: "no optimizer state in the checkpoint" };
  }
  if (found.length > 1) {
    context.violations.push(
      `${policy.name}: the checkpoint holds ${found.length} optimizer states but one optimizer is being restored`,
    );
  }
  const { path, value, paramOrder } = found[0]!;
  const params = [...input.targets.model.parameters()];
  let parsed: ParsedOptimizer;
  let mapped: ReturnType<typeof mapOptimizerToNames>;
  try {
    parsed = parseTorchOptimizerState(value, path);
    mapped = mapOptimizerToNames(parsed, {
      sourceParamOrder: context.source.checkpointKeys,
      toTarget: context.toTarget,
      targetParams: params,
      // Moments have the checkpoint tensor's layout; they fit only where the value itself fits.
      checkpointShapeOf: (target) => {
        const value = context.sourceForTarget(target);
        const param = params.find((p) => p.name === target);
        return value && param && sameShape(value.shape, param.shape)
          ? value.checkpointShape
          : undefined;
      },
      ...(paramOrder ? { loadoutParamOrder: paramOrder } : {}),
    });
  } catch (error) {
    if (!(error instanceof LoadoutError)) throw error;
    context.violations.push(`optimizer state: ${error.what}`);
    return {
      ...base,
      action: "restore",
      reason: "optimizer state cannot be mapped to the model",
      sourcePath: path,
    };
  }
  const checkpointType = describeOptimizer(parsed);
  if (checkpointType && family(checkpointType) !== family(target.type)) {
    context.violations.push(
      `optimizer kind differs: the checkpoint's state is from an optimizer of kind ${checkpointType}, the target optimizer is ${target.type}`,
    );
  }
  const expected = new Set(
    input.targets.model
      .parameters()
      .filter((p) => p.kind === "parameter")
      .map((p) => p.name),
  );
  const restored = new Set(mapped.byIndex.values());
  const lacking = [...expected].filter((name) => !restored.has(name));
  const extra = [...restored].filter((name) => !expected.has(name));
  if (lacking.length > 0) {
    context.violations.push(
      `optimizer state has no entry for model parameter(s) ${lacking.slice(0, 8).join(", ")}`,
    );
  }
  if (extra.length > 0) {
    context.violations.push(
      `optimizer state names parameter(s) the model lacks: ${extra.slice(0, 8).join(", ")}`,
    );
  }
  const untransformable = [...mapped.byIndex.values()].filter((name) => {
    const value = context.sourceForTarget(name);
    return value !== undefined && value.transformLike === undefined;
  });
  if (untransformable.length > 0) {
    context.violations.push(
      `optimizer state cannot follow the layout mapping of ${untransformable.slice(0, 8).join(", ")} (made from several checkpoint tensors)`,
    );
  }
  context.handles.optimizer = { parsed, byIndex: mapped.byIndex };
  const entries = [...mapped.byIndex].map(([index, param]) => {
    const state = parsed.state.get(index);
    return {
      param,
      sourceIndex: index,
      fields: state ? [...Object.keys(state.scalars), ...state.tensors.keys()] : [],
    };
  });
  return {
    action: "restore",
    reason: `restores ${entries.length} parameters' state and the hyperparameters of ${parsed.groups.length} group(s)`,
    mapping: mapped.mapping,
    type: checkpointType ?? null,
    entries,
    sourcePath: path,
  };
}

export async function planScheduler(
  input: PlanInput,
  policy: StrategyPolicy,
  violations: string[],
  handlesOut: PlanHandles,
): Promise<SchedulerPlan | null> {
  if (!input.targets.scheduler) return null;
  if (policy.scheduler === "keep") {
    return {
      action: "keep",
      reason: `${policy.name} leaves the scheduler as it is`,
      sourcePath: null,
    };
  }
  if (policy.scheduler === "reset") {
    return { action: "reset", reason: "starts fresh from its first step", sourcePath: null };
  }
  const found = findSchedulerStates(input.checkpoint.root);
  if (found.length === 0) {
    violations.push(`${policy.name}: the checkpoint holds no scheduler state to resume from`);
    return { action: "restore", reason: "no scheduler state in the checkpoint", sourcePath: null };
  }
  if (found.length > 1) {
    violations.push(
      `${policy.name}: the checkpoint holds ${found.length} scheduler states but one scheduler is being restored`,
    );
  }
  const { path, value } = found[0]!;
  let state: SchedulerState;
  try {
    state = await toSchedulerState(value, path);
  } catch (error) {
    if (!(error instanceof LoadoutError)) throw error;
    violations.push(`scheduler state: ${error.what}`);
    return { action: "restore", reason: "the scheduler state cannot be read", sourcePath: path };
  }
  handlesOut.scheduler = state;
  const epoch = state.last_epoch;
  return {
    action: "restore",
    reason: `restores the scheduler state${typeof epoch === "number" ? ` (last_epoch ${epoch})` : ""}`,
    sourcePath: path,
  };
}

export async function planTrainingState(
  input: PlanInput,
  policy: StrategyPolicy,
  violations: string[],
): Promise<TrainingStatePlan> {
  if (policy.trainingState === "keep") {
    return {
      action: "keep",
      reason: `${policy.name} leaves the training state as it is`,
      value: input.trainingState,
    };
  }
  if (policy.trainingState === "reset") {
    return {
      action: "reset",
      reason: "a new run",
      value: freshTrainingState(),
    };
  }
  const { state, origin } = await readTrainingState(input.checkpoint);
  if (origin === null) {
    violations.push(
      `${policy.name}: the checkpoint records no training state (epoch, global_step) to resume from`,
    );
    return {
      action: "restore",
      reason: "no training state in the checkpoint",
      value: input.trainingState,
    };
  }
  return { action: "restore", reason: `from the ${origin} record`, value: state };
}
