/**
 * PyTorch's learning-rate schedulers (torch 2.13 semantics, exact to the last bit), framework
 * free: construct one over base rates, call step() after each optimizer step and copy
 * getLastLr() into the optimizer. States load from and save to torch's state_dict() fields.
 */
export { type CosineAnnealingLrOptions, createCosineAnnealingLR } from "./cosine-annealing-lr.js";
export { createExponentialLR, type ExponentialLrOptions } from "./exponential-lr.js";
export { schedulerFromState } from "./from-state.js";
export { createLinearLR, type LinearLrOptions } from "./linear-lr.js";
export { createLrGroups } from "./lr-groups.js";
export { createMultiStepLR, type MultiStepLrOptions } from "./multi-step-lr.js";
export { COMMON_FIELDS, OWN_FIELDS, recogniseSchedulerType } from "./recognise.js";
export { createSequentialLR } from "./sequential-lr.js";
export { createStepLR, type StepLrOptions } from "./step-lr.js";
export { schedulerTarget } from "./target.js";
export type {
  ChainableLrScheduler,
  ChainableSchedulerType,
  LrGroups,
  LrScheduler,
  SchedulerType,
} from "./types.js";
