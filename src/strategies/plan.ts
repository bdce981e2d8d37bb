import type { TreePath } from "../checkpoint/tree.js";
import type { TrainingState } from "../state/training-state.js";
import type { DType } from "../tensors/dtype.js";

/**
 * A LoadPlan says, before anything changes, what a load will do to every target parameter and to
 * the optimizer, scheduler and training state, and why. Building one has no side effects.
 */
export type PlanAction =
  /** Copy the source tensor into the parameter (converting dtype if needed). */
  | "load"
  /** Leave the parameter as it is although the checkpoint has a tensor for it (shape mismatch, filtered). */
  | "skip"
  /** Give the parameter fresh values from its own initialiser (cold_start reset_layers). */
  | "reset"
  /** Leave the parameter as it is (nothing to load and nothing asked). */
  | "keep"
  /** The checkpoint has no tensor for this parameter. */
  | "missing";

export interface PlanEntry {
  /** Target parameter name. */
  target: string;
  /** Source key it is loaded from, after key matching (null when none). */
  source: string | null;
  action: PlanAction;
  reason: string;
  sourceShape: number[] | null;
  targetShape: number[];
  sourceDtype: DType | null;
  targetDtype: DType;
  /** dtype conversion on load, when the dtypes differ. */
  conversion: { from: DType; to: DType; lossy: boolean } | null;
  /** `mismatch: overlap`: the block copied (per-dimension minimum of the two shapes). */
  overlap: number[] | null;
  /** Layout transform applied on the way (PyTorch → TensorFlow.js), null when none. */
  transform: string | null;
  /** Whether the parameter is frozen after the load. */
  frozen: boolean;
}

export interface UnexpectedKey {
  source: string;
  shape: number[];
  dtype: DType;
  reason: string;
}

/** What happens to one parameter's optimizer state. */
export interface OptimizerEntryPlan {
  param: string;
  /** Checkpoint index of the parameter in PyTorch's positional optimizer state. */
  sourceIndex: number | null;
  /** State entries restored (`exp_avg`, `exp_avg_sq`, `step`...). */
  fields: string[];
}

export interface OptimizerPlan {
  action: "restore" | "reset" | "keep";
  reason: string;
  /** How checkpoint indices were mapped to names: param_names, parameter order, or loadout's record. */
  mapping: "param_names" | "parameter_order" | "loadout" | null;
  type: string | null;
  entries: OptimizerEntryPlan[];
  /** Source path of the optimizer state inside the checkpoint. */
  sourcePath: TreePath | null;
}

export interface SchedulerPlan {
  action: "restore" | "reset" | "keep";
  reason: string;
  sourcePath: TreePath | null;
}

export interface TrainingStatePlan {
  action: "restore" | "reset" | "keep";
  reason: string;
  value: TrainingState;
}

export interface KeyTransform {
  /** Prefix removed from source keys ('' for none). */
  from: string;
  /** Prefix added ('' for none). */
  to: string;
  count: number;
}

export interface LoadPlan {
  strategy: string;
  source: { file: string; format: string; stateDictPath: TreePath };
  entries: PlanEntry[];
  unexpected: UnexpectedKey[];
  keyTransforms: KeyTransform[];
  optimizer: OptimizerPlan | null;
  scheduler: SchedulerPlan | null;
  trainingState: TrainingStatePlan;
  /** Why the plan cannot be applied (strict violations...). Empty when it can. */
  violations: string[];
}
