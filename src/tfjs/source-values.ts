import { LoadError } from "../errors.js";
import type { SourceTensor } from "../strategies/source-tensor.js";
import { allocate, type DType, type TypedArray } from "../tensors/dtype.js";
import { numelOf } from "../tensors/shape.js";
import type { ReadOptions, Tensor } from "../tensors/tensor.js";
import { permute, permutedShape, permuteInto, transposeSquareInPlace } from "./layout.js";

/**
 * Checkpoint tensors as the TensorFlow.js model wants them: axes permuted, two tensors summed,
 * int64 narrowed to tfjs's int32 only when every value fits.
 */

/** A SourceTensor the PyTorch → tfjs mapping made; `unused` says why it has no tfjs counterpart. */
export interface MappedSourceTensor extends SourceTensor {
  readonly unused?: string;
}

export interface Layout {
  perm: readonly number[];
  /** Shown in the plan: "transpose [out, in] → [in, out]". */
  label: string;
}

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

/** Reads `tensor` as `dtype` in its own layout; int64 → int32 refuses values int32 cannot hold. */
async function readChecked(tensor: Tensor, key: string, dtype: DType): Promise<TypedArray> {
  if (!(tensor.dtype === "int64" && dtype === "int32")) return tensor.read({ dtype });
  const wide = (await tensor.read()) as BigInt64Array;
  const narrow = new Int32Array(wide.length);
  for (let i = 0; i < wide.length; i++) {
    const value = wide[i]!;
    if (value < INT32_MIN || value > INT32_MAX) {
      throw new LoadError(
        "INT32_OVERFLOW",
        `int64 value ${value} at element ${i} does not fit the model's int32 weight`,
        { key, hint: "TensorFlow.js has no int64: only values in int32's range can be loaded." },
      );
    }
    narrow[i] = Number(value);
  }
  return narrow;
}

/** A transpose of an n × n matrix, which can be done in place. */
function isSquareTranspose(shape: readonly number[], perm: readonly number[]): boolean {
  return shape.length === 2 && shape[0] === shape[1] && perm[0] === 1 && perm[1] === 0;
}

export interface LayoutOptions {
  /** Axes to permute. */
  layout?: Layout;
  /** What the plan shows as the transform (default: the layout's label, else none). */
  label?: string | null;
  /** The tfjs weight's dtype, when known: int64 → int32 is then range-checked before any write. */
  targetDtype?: DType;
}

/** One checkpoint tensor, its axes permuted when `layout` is given. */
export function layoutSource(
  key: string,
  tensor: Tensor,
  options: LayoutOptions = {},
): MappedSourceTensor {
  const { layout, targetDtype } = options;
  const shape = layout ? permutedShape(tensor.shape, layout.perm) : [...tensor.shape];
  const value: MappedSourceTensor = {
    sources: [key],
    shape,
    checkpointShape: tensor.shape,
    dtype: tensor.dtype,
    byteLength: tensor.byteLength,
    transform: options.label !== undefined ? options.label : (layout?.label ?? null),
    async readInto(destination: TypedArray, options: ReadOptions = {}) {
      const dtype = options.dtype ?? tensor.dtype;
      const narrows = tensor.dtype === "int64" && dtype === "int32";
      if (!layout && !narrows) {
        await tensor.readInto(destination, options);
        return;
      }
      if (layout && !narrows && isSquareTranspose(tensor.shape, layout.perm)) {
        // Read as stored, then transpose where it is: no scratch array of the tensor's size.
        await tensor.readInto(destination, options);
        transposeSquareInPlace(destination, tensor.shape[0]!);
        return;
      }
      const values = await readChecked(tensor, key, dtype);
      if (values.length !== destination.length) {
        throw new LoadError(
          "BAD_DESTINATION",
          `destination holds ${destination.length} elements; '${key}' has ${values.length}`,
          { key },
        );
      }
      if (layout) permuteInto(values, tensor.shape, layout.perm, destination);
      else (destination as Int32Array).set(values as Int32Array);
    },
    async read(options: ReadOptions = {}) {
      const destination = allocate(options.dtype ?? tensor.dtype, numelOf(shape));
      await value.readInto(destination, options);
      return destination;
    },
    async checkReadable() {
      await tensor.checkReadable();
      if (tensor.dtype === "int64" && targetDtype === "int32")
        await readChecked(tensor, key, "int32");
    },
    transformLike: (values) => (layout ? permute(values, tensor.shape, layout.perm) : values),
  };
  return value;
}

/** The elementwise sum of two same-shaped checkpoint tensors (an LSTM's bias_ih + bias_hh). */
export function sumSource(
  keys: readonly [string, string],
  tensors: readonly [Tensor, Tensor],
  label: string,
): MappedSourceTensor {
  const [a, b] = tensors;
  const shape = [...a.shape];
  const value: MappedSourceTensor = {
    sources: [...keys],
    shape,
    dtype: a.dtype,
    byteLength: a.byteLength + b.byteLength,
    transform: label,
    async readInto(destination: TypedArray, options: ReadOptions = {}) {
      const dtype = options.dtype ?? a.dtype;
      const [x, y] = [await readChecked(a, keys[0], dtype), await readChecked(b, keys[1], dtype)];
      if (x.length !== destination.length) {
        throw new LoadError(
          "BAD_DESTINATION",
          `destination holds ${destination.length} elements; '${keys[0]}' has ${x.length}`,
          { key: keys[0] },
        );
      }
      const out = destination as Float32Array;
      const left = x as Float32Array;
      const right = y as Float32Array;
      for (let i = 0; i < out.length; i++) out[i] = left[i]! + right[i]!;
    },
    async read(options: ReadOptions = {}) {
      const destination = allocate(options.dtype ?? a.dtype, numelOf(shape));
      await value.readInto(destination, options);
      return destination;
    },
    async checkReadable() {
      await a.checkReadable();
      await b.checkReadable();
    },
    // No transformLike: optimizer state of a sum cannot be split back into its two parts.
  };
  return value;
}

/** A checkpoint tensor kept for the plan only: it has no tfjs counterpart, for `reason`. */
export function unusedSource(key: string, tensor: Tensor, reason: string): MappedSourceTensor {
  return { ...layoutSource(key, tensor), unused: reason };
}
