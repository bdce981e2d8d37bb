import { TensorError } from "../../errors.js";
import { convertElements } from "../../tensors/convert.js";
import {
  type ArrayKind,
  allocate,
  arrayKindOf,
  byteLengthOf,
  type DType,
  dtypeInfo,
  type TypedArray,
} from "../../tensors/dtype.js";
import { formatShape, numelOf } from "../../tensors/shape.js";
import type { TensorLike } from "../../tensors/tensor-like.js";

/** A TensorLike over a typed array already in memory (optimizer state, scalars). */
export function arrayTensor(
  dtype: DType,
  shape: readonly number[],
  data: TypedArray,
  key?: string,
): TensorLike {
  const numel = numelOf(shape);
  const expected = elementsOf(dtype, numel);
  if (arrayKindOf(data) !== dtypeInfo(dtype).array || data.length !== expected) {
    throw new TensorError(
      "BAD_TENSOR_DATA",
      `a ${arrayKindOf(data)} of ${data.length} elements cannot be a ${dtype} tensor of shape ${formatShape(shape)}`,
      { key, hint: `It needs a ${dtypeInfo(dtype).array} of ${expected} elements.` },
    );
  }
  return {
    dtype,
    shape: Object.freeze([...shape]),
    async read(options = {}) {
      const target = options.dtype ?? dtype;
      if (target === dtype) return data.slice();
      const out = allocate(target, numel);
      convertElements(data, dtype, out, target);
      return out;
    },
  };
}

/** Length of the typed array holding `numel` elements of `dtype`. */
function elementsOf(dtype: DType, numel: number): number {
  const info = dtypeInfo(dtype);
  if (info.kind === "raw") return byteLengthOf(dtype, numel) ?? 0;
  return info.kind === "complex" ? numel * 2 : numel;
}

/** The dtype a typed array holds when nothing else says: undefined when its kind is ambiguous (Uint16Array). */
const DTYPE_OF_ARRAY: Partial<Record<ArrayKind, DType>> = {
  Float64Array: "float64",
  Float32Array: "float32",
  Int32Array: "int32",
  Int16Array: "int16",
  Int8Array: "int8",
  Uint8Array: "uint8",
  Uint32Array: "uint32",
  BigInt64Array: "int64",
  BigUint64Array: "uint64",
};

/**
 * The dtype of state held as `data` for a parameter of dtype `like`: the parameter's own when the
 * array is of its kind (a Uint16Array beside a bfloat16 parameter is bfloat16), else the array's.
 */
export function dtypeOfArray(data: TypedArray, like: DType | undefined): DType | undefined {
  const kind = arrayKindOf(data);
  if (like !== undefined && dtypeInfo(like).array === kind) return like;
  return DTYPE_OF_ARRAY[kind];
}
