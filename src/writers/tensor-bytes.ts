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

/**
 * The byte streams of several tensors written one after another, each started while the one
 * before is still being written: when a tensor's stream begins, the next tensor's first chunk
 * is requested at once, so reading it overlaps checksumming and writing this one. Each stream
 * reads into its own buffer, so at most one chunk more than without it is held; within one
 * stream, chunks are still asked for only once the previous one is consumed.
 */
export class ReadAhead {
  private next: { index: number; stream: Started } | undefined;

  constructor(
    private readonly count: number,
    private readonly open: (index: number) => AsyncGenerator<Uint8Array>,
  ) {}

  /** Stream `index` (call in order, 0 to count - 1). */
  async *stream(index: number): AsyncGenerator<Uint8Array> {
    const own = this.next?.index === index ? this.next.stream : start(this.open(index));
    this.next =
      index + 1 < this.count
        ? { index: index + 1, stream: start(this.open(index + 1)) }
        : undefined;
    yield* own.chunks();
  }
}

interface Started {
  chunks(): AsyncGenerator<Uint8Array>;
}

/** Asks `generator` for its first chunk now; chunks() yields it, then the rest. */
function start(generator: AsyncGenerator<Uint8Array>): Started {
  const first = generator.next();
  // Its error is rethrown by chunks(); until then it must not count as unhandled.
  first.catch(() => {});
  return {
    async *chunks() {
      let result = await first;
      try {
        while (!result.done) {
          yield result.value;
          result = await generator.next();
        }
      } finally {
        // A consumer that stops early closes the stream, which gives its buffer back.
        if (!result.done) await generator.return(undefined);
      }
    },
  };
}
