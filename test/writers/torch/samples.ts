/** A small training run's state, for the training checkpoint tests. */
import type { TrainingState } from "../../../src/state/training-state.js";
import type { OptimizerState, SchedulerState } from "../../../src/targets/types.js";
import type { TensorLike } from "../../../src/tensors/tensor-like.js";
import { pyFloat } from "../../../src/writers/torch/pickler.js";
import type { TrainingCheckpoint } from "../../../src/writers/torch/training-checkpoint.js";
import { memoryTensor, sampleTensor } from "./helpers.js";

/** A small net: conv, a BatchNorm's buffers, a bfloat16 head. */
export function sampleModel(): Map<string, TensorLike> {
  return new Map<string, TensorLike>([
    ["conv.weight", sampleTensor("float32", [2, 1, 3, 3], 1)],
    ["conv.bias", sampleTensor("float32", [2], 2)],
    ["bn.running_mean", sampleTensor("float32", [2], 3)],
    ["bn.num_batches_tracked", memoryTensor("int64", [], BigInt64Array.of(6n))],
    ["head.weight", sampleTensor("bfloat16", [3, 2], 4)],
    ["head.bias", sampleTensor("float32", [3], 5)],
  ]);
}

const numelOf = (tensor: TensorLike) => tensor.shape.reduce((a, b) => a * b, 1);

/** AdamW's state after some steps, in two param groups. */
export function sampleOptimizer(model: Map<string, TensorLike>): OptimizerState {
  const adam = (name: string, step: number) => {
    const n = numelOf(model.get(name)!);
    const like = model.get(name)!.dtype === "bfloat16";
    const fill = (k: number) =>
      like
        ? Uint16Array.from({ length: n }, (_, i) => 0x3f80 + i + k)
        : Float32Array.from({ length: n }, (_, i) => (i + k) / 8);
    return {
      scalars: { step },
      tensors: new Map([
        ["exp_avg", fill(1)],
        ["exp_avg_sq", fill(2)],
      ]),
    };
  };
  return {
    type: "AdamW",
    groups: [
      {
        params: ["conv.weight", "conv.bias", "head.weight"],
        hyper: {
          lr: 0.0007938926261462366,
          betas: [0.9, 0.999],
          eps: 1e-8,
          weight_decay: 0.01,
          amsgrad: false,
          foreach: null,
          maximize: false,
          capturable: false,
          differentiable: false,
          fused: null,
          decoupled_weight_decay: true,
          initial_lr: 0.001,
        },
      },
      { params: ["head.bias"], hyper: { lr: 1, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0 } },
    ],
    state: new Map([
      ["conv.weight", adam("conv.weight", 6)],
      ["conv.bias", adam("conv.bias", 6)],
      ["head.weight", adam("head.weight", 6)],
      ["head.bias", adam("head.bias", 2)],
    ]),
  };
}

export const sampleScheduler = (): SchedulerState => ({
  T_max: 10,
  eta_min: 0,
  base_lrs: [0.001, 1],
  last_epoch: 3,
  _step_count: 4,
  _is_initial: false,
  _get_lr_called_within_step: false,
  _last_lr: [0.0007938926261462366, 1],
});

export const sampleTrainingState = (): TrainingState => ({
  epoch: 2,
  globalStep: 6,
  bestMetric: 0.4321,
  metricsHistory: [
    { step: 2, name: "val_loss", value: 0.5 },
    { step: 4, name: "val_loss", value: 1 },
    { step: 6, name: "val_loss", value: 0.4321 },
  ],
});

export function sampleCheckpoint(): TrainingCheckpoint {
  const model = sampleModel();
  return {
    model,
    optimizer: sampleOptimizer(model),
    scheduler: sampleScheduler(),
    trainingState: sampleTrainingState(),
    hyperParameters: { lr: pyFloat(0.001), batch_size: 4, layers: ["conv", "head"] },
  };
}
