/** loadout: read, check and load ML checkpoints without executing anything in them. */
export * from "./checkpoint/checkpoint.js";
export * from "./checkpoint/metadata.js";
export * from "./checkpoint/open.js";
export * from "./checkpoint/state-dict.js";
export * from "./checkpoint/training-counters.js";
export * from "./checkpoint/tree.js";
export * from "./config/index.js";
export * from "./errors.js";
export type { PickleLimits } from "./formats/pickle/types.js";
// Not SHAPE_KEEPERS: kept values that hold V8's hidden classes, not API.
export {
  isDict,
  isTuple,
  makeTuple,
  OpaqueObject,
  PyComplex,
  type PyDict,
  PyGlobal,
  type PyObjectLike,
  type PyValue,
} from "./formats/pickle/values.js";
export type { CheckpointFormat, FormatOptions } from "./formats/types.js";
export * from "./io/byte-source.js";
export * from "./keys/index.js";
export * from "./pipeline/context.js";
export * from "./pipeline/load.js";
export * from "./pipeline/pipeline.js";
export * from "./state/read-training-state.js";
export * from "./state/training-state.js";
export * from "./strategies/apply.js";
export type { StrategyPolicy } from "./strategies/build-plan.js";
export * from "./strategies/builtin.js";
export * from "./strategies/plan.js";
export * from "./strategies/registry.js";
export * from "./strategies/strategy.js";
export * from "./targets/from-state-dict.js";
export * from "./targets/memory.js";
export type * from "./targets/types.js";
export * from "./tensors/dtype.js";
// Not internPrefix / isPrefix: helpers of the open's hot path, not API.
export {
  contiguousStrides,
  formatShape,
  internShape,
  nextIndex,
  numelOf,
  sameShape,
} from "./tensors/shape.js";
export { type TensorStats, tensorStats } from "./tensors/stats.js";
export { type ReadOptions, type Storage, Tensor } from "./tensors/tensor.js";
export type { TensorLike } from "./tensors/tensor-like.js";
export * from "./writers/index.js";
