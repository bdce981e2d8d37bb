import type { TrainingState } from "../state/training-state.js";
import type { SchedulerState, SchedulerTarget } from "../targets/types.js";
import type { TensorLike } from "../tensors/tensor-like.js";
import type { ByteSink } from "../writers/sink.js";
import { arrayTensor } from "../writers/torch/array-tensor.js";
import type { WritableValue } from "../writers/torch/python-values.js";
import type { TorchCheckpointResult } from "../writers/torch/torch-writer.js";
import {
  type TrainingCheckpoint,
  type TrainingCheckpointOptions,
  writeTrainingCheckpoint,
} from "../writers/torch/training-checkpoint.js";
import type { LayersModel, Optimizer } from "./internals.js";
import { readWeight } from "./model-target.js";
import { tfjsOptimizerTarget } from "./optimizer-target.js";
import { listModelWeights } from "./weights.js";

/**
 * A tfjs training run as loadout's training checkpoint (writeTrainingCheckpoint's
 * Lightning-shaped layout), under the tfjs names `<layer>/<weight>` with no prefix:
 *
 *   state_dict:        {"conv/kernel": [H, W, I, O] float32, "bn/moving_mean": ..., ...}
 *   optimizer_states:  [PyTorch-shaped state: exp_avg / exp_avg_sq / step... per name, one group]
 *   lr_schedulers:     [the scheduler's state_dict, PyTorch's field names]
 *   loadout:           {param_order, training_state: {epoch, global_step, best_metric, ...}}
 *
 * tfjs names and layouts, not PyTorch's, so that warm_start into the same tfjs model is exact
 * (no transposes, no renaming); PyTorch reads the file, but its names are tfjs's.
 */

export interface TfjsTrainingRun {
  model: LayersModel;
  optimizer?: Optimizer;
  /** A SchedulerTarget, or a scheduler with PyTorch's `stateDict()`. */
  scheduler?: SchedulerTarget | { stateDict(): SchedulerState };
  state: TrainingState;
  /** Written as `hyper_parameters`. */
  hyperParameters?: Readonly<Record<string, WritableValue>>;
}

function schedulerState(scheduler: TfjsTrainingRun["scheduler"]): SchedulerState | undefined {
  if (!scheduler) return undefined;
  return "getState" in scheduler ? scheduler.getState() : scheduler.stateDict();
}

/** The run's checkpoint contents: every weight copied, the optimizer's state by weight name. */
export function tfjsTrainingCheckpoint(run: TfjsTrainingRun): TrainingCheckpoint {
  const model = new Map<string, TensorLike>();
  for (const weight of listModelWeights(run.model)) {
    model.set(
      weight.name,
      arrayTensor(weight.dtype, weight.shape, readWeight(weight), weight.name),
    );
  }
  const checkpoint: TrainingCheckpoint = { model, trainingState: run.state, prefix: "" };
  if (run.optimizer)
    checkpoint.optimizer = tfjsOptimizerTarget(run.optimizer, run.model).getState();
  const scheduler = schedulerState(run.scheduler);
  if (scheduler) checkpoint.scheduler = scheduler;
  if (run.hyperParameters) checkpoint.hyperParameters = run.hyperParameters;
  return checkpoint;
}

/** Writes the run's training checkpoint to `sink` and closes it (aborts it on failure). */
export async function writeTfjsTrainingCheckpoint(
  sink: ByteSink,
  run: TfjsTrainingRun,
  options: TrainingCheckpointOptions = {},
): Promise<TorchCheckpointResult> {
  let checkpoint: TrainingCheckpoint;
  try {
    checkpoint = tfjsTrainingCheckpoint(run);
  } catch (error) {
    await sink.abort().catch(() => {});
    throw error;
  }
  return writeTrainingCheckpoint(sink, checkpoint, options);
}
