import type { Checkpoint } from "../checkpoint/checkpoint.js";
import type { LoadingConfig } from "../config/types.js";
import type { TrainingState } from "../state/training-state.js";
import type { LoadPlan } from "../strategies/plan.js";
import type { SourceStateDict } from "../strategies/source-tensor.js";
import type { Targets, Undo } from "../targets/types.js";

/** Progress of a load: tensors and bytes done out of the plan's totals. */
export interface ProgressEvent {
  stage: string;
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** The parameter just finished. */
  key?: string;
}

/** What the pipeline did, growing as stages run. */
export interface LoadReport {
  plan?: LoadPlan;
  /** True once a stage committed changes to the targets. */
  applied: boolean;
  warnings: string[];
  /** One line per stage that ran, in order. */
  stages: { name: string; ms: number; note?: string }[];
  tensorsLoaded: number;
  bytesLoaded: number;
}

/**
 * Everything a load needs and produces, passed from stage to stage. Stages return a new context
 * rather than mutating the one they got; targets are changed only through their all-or-nothing
 * methods, so a failure anywhere leaves the caller's objects as they were.
 */
export interface CheckpointContext {
  checkpoint: Checkpoint;
  targets: Targets;
  trainingState: TrainingState;
  config: LoadingConfig;
  /** Checkpoint metadata (safetensors __metadata__, anemoi JSON...), for stages that want it. */
  metadata: Record<string, unknown>;
  /**
   * The model's state dict as earlier stages mapped it (a layout-mapping stage renames and
   * transposes for another framework). Absent: strategies use the checkpoint's own.
   */
  sourceStateDict?: SourceStateDict;
  report: LoadReport;
  /**
   * Undo of each change stages committed to the targets so far, oldest first: if a later stage
   * fails, the pipeline undoes them, so the load stays all-or-nothing.
   */
  commits?: readonly Undo[];
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

export function emptyReport(): LoadReport {
  return { applied: false, warnings: [], stages: [], tensorsLoaded: 0, bytesLoaded: 0 };
}

export interface PipelineStage {
  readonly name: string;
  process(context: CheckpointContext): Promise<CheckpointContext>;
}
