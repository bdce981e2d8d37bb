import type { StrategyPolicy } from "./build-plan.js";

/** Model weights only; optimizer, scheduler and training state untouched. */
export const weightsOnly: StrategyPolicy = {
  name: "weights_only",
  optimizer: "keep",
  scheduler: "keep",
  trainingState: "keep",
  resetLayers: false,
};

/** Loads what fits (mismatches skipped, or their overlap copied); a fresh optimizer and scheduler. */
export const transferLearning: StrategyPolicy = {
  name: "transfer_learning",
  optimizer: "reset",
  scheduler: "reset",
  trainingState: "reset",
  resetLayers: false,
};

/** Resumes exactly: model (strict), optimizer, scheduler and training state. */
export const warmStart: StrategyPolicy = {
  name: "warm_start",
  optimizer: "restore",
  scheduler: "restore",
  trainingState: "restore",
  resetLayers: false,
};

/** Pretrained weights into a new run: training state zeroed, optimizer and scheduler fresh, `reset_layers` keep their own init. */
export const coldStart: StrategyPolicy = {
  name: "cold_start",
  optimizer: "reset",
  scheduler: "reset",
  trainingState: "reset",
  resetLayers: true,
};

export const BUILTIN_POLICIES: readonly StrategyPolicy[] = [
  weightsOnly,
  transferLearning,
  warmStart,
  coldStart,
];
