import type { DType, TypedArray } from "./dtype.js";
import type { ReadOptions } from "./tensor.js";

/**
 * Anything with a dtype, a shape and values that can be read: a checkpoint's lazy Tensor, an
 * array already in memory, the weighted average of several tensors. Writers and merges take these.
 */
export interface TensorLike {
  readonly dtype: DType;
  readonly shape: readonly number[];
  read(options?: ReadOptions): Promise<TypedArray>;
}
