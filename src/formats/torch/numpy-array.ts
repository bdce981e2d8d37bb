import { FormatError, UnsupportedFormatError } from "../../errors.js";
import { MemorySource } from "../../io/byte-source.js";
import { byteLengthOf, isDType } from "../../tensors/dtype.js";
import { contiguousStrides, numelOf } from "../../tensors/shape.js";
import { Tensor } from "../../tensors/tensor.js";
import { NumpyArray } from "../pickle/numpy.js";
import type { CallContext } from "../pickle/types.js";
import type { PyValue } from "../pickle/values.js";

/** numpy dtype names that are also loadout dtypes (numpy's float96, strings, objects... are not). */
const NUMPY_KINDS = new Set(["b", "i", "u", "f", "c"]);

/**
 * A tensor over the bytes of a numpy array the unpickler rebuilt (for
 * `torch._utils._rebuild_device_tensor_from_numpy`), or undefined when `value` is not an array.
 * The unpickler already holds the elements little-endian.
 */
export function numpyArrayTensor(
  value: PyValue | undefined,
  context: CallContext,
): Tensor | undefined {
  if (!(value instanceof NumpyArray)) return undefined;
  const { dtype, shape, data } = value;
  if (!NUMPY_KINDS.has(value.descr.kind) || !isDType(dtype) || !(data instanceof Uint8Array)) {
    throw new UnsupportedFormatError(
      "UNSUPPORTED_DTYPE",
      `a numpy array of dtype ${dtype} cannot be read as a tensor (${context.global})`,
      { file: context.file },
    );
  }
  if (byteLengthOf(dtype, numelOf(shape)) !== data.length) {
    throw new FormatError(
      "BAD_NUMPY_ARRAY",
      `numpy array [${shape}] of ${dtype} holds ${data.length} bytes (${context.global})`,
      { file: context.file },
    );
  }
  // Fortran order: the first dimension varies fastest.
  const strides = value.fortranOrder
    ? contiguousStrides([...shape].reverse()).reverse()
    : contiguousStrides(shape);
  const source = new MemorySource(data, `${context.file ?? "<pickle>"}:numpy array`);
  return new Tensor({ storage: { source, dtype, bigEndian: false }, dtype, shape, strides });
}
