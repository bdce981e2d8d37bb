import type { DType, TypedArray } from "../tensors/dtype.js";
import type { ReadOptions, Tensor } from "../tensors/tensor.js";

/**
 * A value the planner can load into one target parameter: usually one checkpoint tensor as it
 * is, but a layout-mapping stage (PyTorch → TensorFlow.js) may rename it, permute its axes, or
 * build it from several checkpoint tensors (an LSTM's bias_ih + bias_hh).
 */
export interface SourceTensor {
  /** Checkpoint keys the value is made from (one, unless a transform combines several). */
  readonly sources: readonly string[];
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Bytes read from the checkpoint to produce it. */
  readonly byteLength: number;
  /** Shape of the checkpoint tensor it is made from (its optimizer moments have this shape). */
  readonly checkpointShape?: readonly number[];
  /** What was done to the checkpoint tensor(s), for the plan ("transpose [out, in] → [in, out]"); null when nothing. */
  readonly transform: string | null;
  readInto(destination: TypedArray, options?: ReadOptions): Promise<void>;
  read(options?: ReadOptions): Promise<TypedArray>;
  /** Checks that every byte the value needs can be read, without reading it. */
  checkReadable(): Promise<void>;
  /**
   * Applies the same layout transform to another array shaped like the checkpoint tensor (an
   * optimizer moment of the same parameter). Absent when the value is not a per-element mapping
   * of one checkpoint tensor: such parameters' optimizer state cannot be carried over.
   */
  transformLike?(values: TypedArray, dtype: DType): TypedArray;
}

/** The model's state dict as the planner sees it: source key → value, in checkpoint order. */
export interface SourceStateDict {
  /** Where in the checkpoint the state dict was found. */
  path: (string | number)[];
  tensors: Map<string, SourceTensor>;
  /** The checkpoint's own keys in order (parameter order for optimizer mapping). */
  checkpointKeys: string[];
  /**
   * Checkpoint keys a mapping stage knows have no counterpart in the target, with why
   * (`num_batches_tracked` in TensorFlow.js). Listed as unexpected with that reason; never a
   * strict violation.
   */
  unused?: ReadonlyMap<string, string>;
}

/** A checkpoint tensor as a SourceTensor, unchanged. */
export function plainSource(key: string, tensor: Tensor): SourceTensor {
  return {
    sources: [key],
    shape: tensor.shape,
    checkpointShape: tensor.shape,
    dtype: tensor.dtype,
    byteLength: tensor.byteLength,
    transform: null,
    readInto: (destination, options) => tensor.readInto(destination, options),
    read: (options) => tensor.read(options),
    checkReadable: () => tensor.checkReadable(),
    transformLike: (values) => values,
  };
}
