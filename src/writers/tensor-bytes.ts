import { TensorError } from "../errors.js";
import { arrayKindOf, bytesOf, type DType, dtypeInfo, type TypedArray } from "../tensors/dtype.js";
import type { ReadOptions } from "../tensors/tensor.js";
import type { TensorLike } from "../tensors/tensor-like.js";

/** A TensorLike that can hand out its elements a chunk at a time, as a checkpoint's lazy Tensor does. */
export interface ChunkedTensorLike extends TensorLike {
  /** Row-major elements in successive arrays; each may be reused once the next is asked for. */
  chunks(options?: ReadOptions): AsyncIterable<TypedArray>;
}

export function hasChunks(tensor: TensorLike): tensor is ChunkedTensorLike {
  return typeof (tensor as Partial<ChunkedTensorLike>).chunks === "function";
}

/**
 * The bytes of `tensor` as `dtype` (little-endian, row-major), checked to come to exactly
 * `byteLength` before any byte past it is handed on. A chunked tensor is streamed, so only one
 * chunk is in memory at a time; any other is read whole. Each array yielded is valid only until
 * the next one is asked for.
 */
export async function* tensorBytes(
  tensor: TensorLike,
  dtype: DType,
  byteLength: number,
  name: string,
): AsyncGenerator<Uint8Array> {
  const options = dtype === tensor.dtype ? undefined : { dtype };
  const arrays: AsyncIterable<TypedArray> | Iterable<TypedArray> = hasChunks(tensor)
    ? tensor.chunks(options)
    : [await tensor.read(options)];
  const expectedKind = dtypeInfo(dtype).array;
  let done = 0;
  for await (const array of arrays) {
    if (arrayKindOf(array) !== expectedKind) {
      throw new TensorError(
        "BAD_TENSOR_DATA",
        `tensor of ${dtype} gave its elements as a ${arrayKindOf(array)}, not a ${expectedKind}`,
        { key: name },
      );
    }
    if (done + array.byteLength > byteLength) throw sizeMismatch(name, dtype, byteLength, "more");
    done += array.byteLength;
    yield bytesOf(array);
  }
  if (done !== byteLength) throw sizeMismatch(name, dtype, byteLength, "fewer");
}

function sizeMismatch(
  name: string,
  dtype: DType,
  byteLength: number,
  direction: "more" | "fewer",
): TensorError {
  return new TensorError(
    "TENSOR_SIZE_MISMATCH",
    `tensor gave ${direction} than the ${byteLength} bytes its shape and dtype (${dtype}) need`,
    { key: name, hint: "Its shape or dtype does not describe its data." },
  );
}
