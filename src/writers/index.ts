/** Writers that run anywhere (no `node:` imports); the atomic file sink is in file-sink.ts. */

export * from "../errors.js";
export * from "./safetensors-layout.js";
export * from "./safetensors-writer.js";
export * from "./shard-index.js";
export * from "./shard-plan.js";
export * from "./sharded.js";
export * from "./sink.js";
export * from "./size.js";
export * from "./tensor-bytes.js";
export { arrayTensor } from "./torch/array-tensor.js";
export { pyFloat, pyOrderedDict, pyTuple, type WritableValue } from "./torch/python-values.js";
export {
  type TorchCheckpointOptions,
  type TorchCheckpointResult,
  writeTorchCheckpoint,
} from "./torch/torch-writer.js";
export {
  type TrainingCheckpoint,
  type TrainingCheckpointOptions,
  trainingCheckpointTree,
  writeTrainingCheckpoint,
} from "./torch/training-checkpoint.js";
