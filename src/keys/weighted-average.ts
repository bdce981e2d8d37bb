import { MergeConflictError, TensorError } from "../errors.js";
import { convertElements } from "../tensors/convert.js";
import {
  allocate,
  byteLengthOf,
  bytesOf,
  type DType,
  dtypeInfo,
  type TypedArray,
} from "../tensors/dtype.js";
import { numelOf } from "../tensors/shape.js";
import type { ReadOptions } from "../tensors/tensor.js";
import type { TensorLike } from "../tensors/tensor-like.js";

/**
 * Σ wᵢ·xᵢ over tensors of one dtype and shape, computed only when read.
 *
 * - float16/bfloat16/float32/float64: each input is read as float64 and accumulated in float64;
 *   the sum is rounded once, to the inputs' dtype, at the end.
 * - complex64/complex128: real and imaginary parts are averaged the same way.
 * - integers, bool and the raw 8/6/4-bit float formats have no meaningful average (a step
 *   counter like BatchNorm's `num_batches_tracked` averaged would be a made-up count): they are
 *   kept when every input holds the same bits, and refused otherwise.
 * Inputs are read one at a time, so memory holds the sum and one input. Inputs with weight 0
 * are not read at all: their NaNs cannot leak into the result, nor must their integers agree.
 */
export function weightedAverage(
  key: string,
  inputs: readonly TensorLike[],
  weights: readonly number[],
): TensorLike {
  const first = inputs[0]!;
  const dtype = first.dtype;
  const shape = Object.freeze([...first.shape]);
  const used = inputs.map((input, i) => ({ input, weight: weights[i]!, index: i }));
  const active = used.filter(({ weight }) => weight > 0);
  if (active.length === 0) {
    throw new TensorError("NO_WEIGHT", "a weighted average needs an input with weight > 0", {
      key,
    });
  }
  const average = async (options: ReadOptions = {}): Promise<TypedArray> => {
    const kind = dtypeInfo(dtype).kind;
    const own =
      kind === "float" || kind === "complex"
        ? await accumulate(key, dtype, shape, active)
        : await identicalBits(key, dtype, shape, active);
    return convertTo(own, dtype, options.dtype ?? dtype, shape);
  };
  return { dtype, shape, read: average };
}

interface WeightedInput {
  input: TensorLike;
  weight: number;
  /** Position of its state dict among those merged, for messages. */
  index: number;
}

/** Elements (complex: real and imaginary parts) `read()` must return for `dtype` and `shape`. */
function expectedLength(dtype: DType, shape: readonly number[]): number {
  return numelOf(shape) * (dtypeInfo(dtype).kind === "complex" ? 2 : 1);
}

async function readChecked(
  key: string,
  { input, index }: WeightedInput,
  options: ReadOptions,
  length: number,
): Promise<TypedArray> {
  const values = await input.read(options);
  if (values.length !== length) {
    throw new TensorError(
      "BAD_READ_LENGTH",
      `state dict ${index} gave ${values.length} values for a tensor that has ${length}`,
      { key },
    );
  }
  return values;
}

async function accumulate(
  key: string,
  dtype: DType,
  shape: readonly number[],
  inputs: readonly WeightedInput[],
): Promise<TypedArray> {
  const length = expectedLength(dtype, shape);
  // Complex inputs are read as their own interleaved float arrays; real ones as float64.
  const options: ReadOptions = dtypeInfo(dtype).kind === "complex" ? {} : { dtype: "float64" };
  let sum: Float64Array | undefined;
  for (const input of inputs) {
    const values = await readChecked(key, input, options, length);
    const w = input.weight;
    if (sum === undefined) {
      // Allocated only once real values of that length exist; starting from w·x (not 0 + w·x)
      // keeps a lone input's -0 as -0.
      sum = new Float64Array(length);
      for (let i = 0; i < length; i++) sum[i] = w * (values[i] as number);
    } else {
      for (let i = 0; i < length; i++) sum[i]! += w * (values[i] as number);
    }
  }
  if (dtypeInfo(dtype).kind === "complex") {
    const result = allocate(dtype, numelOf(shape)) as Float32Array | Float64Array;
    result.set(sum!);
    return result;
  }
  const result = allocate(dtype, numelOf(shape));
  convertElements(sum!, "float64", result, dtype);
  return result;
}

function sameBits(a: TypedArray, b: TypedArray): boolean {
  const x = bytesOf(a);
  const y = bytesOf(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

async function identicalBits(
  key: string,
  dtype: DType,
  shape: readonly number[],
  inputs: readonly WeightedInput[],
): Promise<TypedArray> {
  const length =
    dtypeInfo(dtype).kind === "raw"
      ? (byteLengthOf(dtype, numelOf(shape)) ?? -1)
      : expectedLength(dtype, shape);
  let kept: TypedArray | undefined;
  let keptFrom = 0;
  for (const input of inputs) {
    const values =
      length === -1 ? await input.input.read() : await readChecked(key, input, {}, length);
    if (kept === undefined) {
      kept = values;
      keptFrom = input.index;
    } else if (!sameBits(kept, values)) {
      throw new MergeConflictError(
        "MERGE_UNAVERAGEABLE",
        `cannot average ${dtype} tensors: state dicts ${keptFrom} and ${input.index} ` +
          "hold different values",
        {
          key,
          hint:
            "Integer, bool and 8-bit float tensors are kept only when identical; " +
            "exclude the key or merge with mode 'override'.",
        },
      );
    }
  }
  return kept!;
}

function convertTo(
  values: TypedArray,
  from: DType,
  to: DType,
  shape: readonly number[],
): TypedArray {
  if (from === to) return values;
  const out = allocate(to, numelOf(shape));
  convertElements(values, from, out, to);
  return out;
}
