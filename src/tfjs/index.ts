/**
 * loadout/tfjs: load PyTorch checkpoints and loadout's training checkpoints into TensorFlow.js
 * models and optimizers, and save tfjs training runs. Needs `@tensorflow/tfjs` (a peer
 * dependency); the rest of loadout never imports it. Runs in browsers: saving to a file is in
 * save-node.ts; here, write to any ByteSink (e.g. `openAtomicFile` from `loadout/node`).
 */

export { permute, permutedShape } from "./layout.js";
export { applyScheduledRate, setLearningRate } from "./learning-rate.js";
export { planTfjsLoad, runTfjsLoad, type TfjsLoadRequest, type TfjsTargets } from "./load.js";
export {
  type TfjsModelTarget,
  type TfjsModelTargetOptions,
  tfjsModelTarget,
} from "./model-target.js";
export {
  NEUTRAL_HYPERPARAMETERS,
  optimizerKind,
  type TfjsOptimizerType,
} from "./optimizer-kinds.js";
export {
  adamBetaPower,
  type TfjsOptimizerTarget,
  type TfjsOptimizerTargetOptions,
  tfjsOptimizerTarget,
} from "./optimizer-target.js";
export {
  layerForModule,
  type MappedStateDict,
  mapPytorchStateDict,
  type PytorchToTfjsOptions,
  pytorchToTfjsStage,
} from "./pytorch-mapping.js";
export {
  type TfjsTrainingRun,
  tfjsTrainingCheckpoint,
  writeTfjsTrainingCheckpoint,
} from "./save.js";
export * from "./schedulers/index.js";
export type { MappedSourceTensor } from "./source-values.js";
export { listModelWeights, type ModelWeight, type TfjsDType } from "./weights.js";
