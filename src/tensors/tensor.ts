import { FormatError, TensorError } from "../errors.js";
import type { PyObjectLike } from "../formats/pickle/values.js";
import { type ByteSource, MemorySource, SliceSource } from "../io/byte-source.js";
import { canConvert, convertElements } from "./convert.js";
import {
  allocate,
  arrayKindOf,
  byteLengthOf,
  bytesOf,
  type DType,
  dtypeInfo,
  itemSize,
  type TypedArray,
  viewAs,
} from "./dtype.js";
import { gatherStrided } from "./gather.js";
import { giveBackScratch, takeScratch } from "./scratch.js";
import { contiguousStrides, internShape, numelOf } from "./shape.js";

const REQUIRES_GRAD = 1;
const IS_PARAMETER = 2;

/** Bytes converted per step when a read must pass through a scratch buffer. */
const CHUNK_BYTES = 8 << 20;

/** Tensors this large and larger read through a reused scratch buffer; smaller ones a new one. */
const REUSED_SCRATCH_MIN = 64 << 10;

/**
 * A run of bytes holding elements of one dtype: a torch storage (a zip entry, a region of a
 * legacy file) or a safetensors tensor's data. Several tensors may view one storage.
 */
export interface Storage {
  /** Exactly the storage's bytes. */
  readonly source: ByteSource;
  /**
   * source.size, for a storage that makes its source when first read (a torch zip entry): a
   * tensor checks its view against this when built, which must not make the source.
   */
  readonly byteLength?: number;
  readonly dtype: DType;
  /** Data written on a big-endian machine; swapped to little-endian on read. */
  readonly bigEndian: boolean;
}

export interface TensorInit {
  storage: Storage;
  dtype?: DType;
  shape: readonly number[];
  /** Defaults to contiguous (row-major) strides. */
  strides?: readonly number[];
  /** In elements. */
  storageOffset?: number;
  /** Where this tensor sits, for error messages. */
  key?: string;
  requiresGrad?: boolean;
  /** Saved as an `nn.Parameter`. */
  isParameter?: boolean;
}

export interface ReadOptions {
  /** Convert to this dtype while reading (default: the tensor's own). */
  dtype?: DType;
}

/**
 * A tensor in a checkpoint: dtype, shape and where its elements are, read only when asked.
 * `read()` returns a new typed array; `readInto()` fills one the caller owns, converting dtype on
 * request, reading contiguous same-dtype data straight into the destination.
 */
export class Tensor implements PyObjectLike {
  readonly storage: Storage;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly storageOffset: number;
  key: string | undefined;
  /**
   * requiresGrad and isParameter as bits, and numel worked out from the shape when asked: a
   * checkpoint holds tensors by the ten thousand, and each field is 8 bytes more in each, for
   * every garbage collection during the open to copy.
   */
  readonly #flags: number;

  constructor(init: TensorInit) {
    this.storage = init.storage;
    this.dtype = init.dtype ?? init.storage.dtype;
    this.shape = internShape(init.shape);
    this.strides = internShape(
      init.strides === undefined ? contiguousStrides(init.shape) : init.strides,
    );
    this.storageOffset = init.storageOffset ?? 0;
    this.#flags = (init.requiresGrad ? REQUIRES_GRAD : 0) | (init.isParameter ? IS_PARAMETER : 0);
    this.key = init.key;
    this.validate();
  }

  /** Number of elements (1 for a 0-d tensor). */
  get numel(): number {
    return numelOf(this.shape);
  }

  get requiresGrad(): boolean {
    return (this.#flags & REQUIRES_GRAD) !== 0;
  }

  /** Saved as an `nn.Parameter`. */
  get isParameter(): boolean {
    return (this.#flags & IS_PARAMETER) !== 0;
  }

  /** On the prototype, not in each of a checkpoint's thousands of tensors. */
  get pyClass(): string {
    return "torch.Tensor";
  }

  /** Bytes the tensor's elements take when contiguous. */
  get byteLength(): number {
    return byteLengthOf(this.dtype, this.numel) ?? 0;
  }

  /** Whether the elements lie in storage in row-major order with no gaps. */
  get isContiguous(): boolean {
    let expected = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      const size = this.shape[d]!;
      if (size !== 1 && this.strides[d] !== expected) return false;
      expected *= size;
    }
    return true;
  }

  private get where(): { file: string; key: string | undefined } {
    return { file: this.storage.source.name, key: this.key };
  }

  /** The view must stay inside its storage: checked once, before any read can happen. */
  private validate(): void {
    const { shape, strides, storageOffset } = this;
    if (shape.length !== strides.length || !allCounts(shape) || !allCounts(strides)) {
      throw new FormatError(
        "BAD_TENSOR_VIEW",
        `invalid tensor view: shape [${shape}] with strides [${strides}]`,
        this.where,
      );
    }
    const numel = numelOf(shape);
    if (!isCount(storageOffset) || !Number.isSafeInteger(numel)) {
      throw new FormatError(
        "BAD_TENSOR_VIEW",
        `invalid tensor view: storage offset ${storageOffset}, shape [${shape}]`,
        this.where,
      );
    }
    if (
      this.dtype !== this.storage.dtype &&
      itemSize(this.dtype) !== itemSize(this.storage.dtype)
    ) {
      throw new FormatError(
        "BAD_TENSOR_VIEW",
        `tensor of ${this.dtype} over a ${this.storage.dtype} storage`,
        this.where,
      );
    }
    if (numel === 0) return;
    let lastElement = storageOffset;
    for (let d = 0; d < shape.length; d++) lastElement += (shape[d]! - 1) * strides[d]!;
    const storageBits = (this.storage.byteLength ?? this.storage.source.size) * 8;
    const endBits = (lastElement + 1) * dtypeInfo(this.dtype).bits;
    if (!Number.isSafeInteger(endBits) || endBits > storageBits) {
      throw new FormatError(
        "VIEW_OUT_OF_STORAGE",
        `tensor view [offset ${storageOffset}, shape [${shape}], strides [${strides}]] reaches element ${lastElement} but its storage holds ${Math.floor(storageBits / dtypeInfo(this.dtype).bits)}`,
        { ...this.where, hint: "The checkpoint is corrupt or was truncated." },
      );
    }
  }

  /** Checks, without reading data, that the tensor's bytes can be read (resolves lazy zip entries). */
  async checkReadable(): Promise<void> {
    await this.storage.source.prepare?.();
  }

  /** Reads all elements into a new typed array (int64 as BigInt64Array, float16/bfloat16 as raw bits unless converted). */
  async read(options: ReadOptions = {}): Promise<TypedArray> {
    const target = options.dtype ?? this.dtype;
    const destination = allocate(target, this.numel);
    await this.readInto(destination, options);
    return destination;
  }

  /** Fills `destination` (the typed array of the target dtype, exactly numel long) with the elements. */
  async readInto(destination: TypedArray, options: ReadOptions = {}): Promise<void> {
    const target = options.dtype ?? this.dtype;
    this.checkDestination(destination, target);
    if (this.numel === 0) return;
    if (this.isContiguous) {
      const start = this.contiguousByteStart();
      if (target === this.dtype && !this.needsSwap) {
        await this.storage.source.readInto(start, bytesOf(destination));
        return;
      }
      if (widensInPlace(this.dtype, target)) {
        await this.readWidening(start, destination, target);
        return;
      }
      let element = 0;
      for await (const chunk of this.contiguousChunks(start)) {
        const count = chunk.length;
        convertElements(chunk, this.dtype, destination.subarray(element, element + count), target);
        element += count;
      }
      return;
    }
    if (target === this.dtype) {
      await this.gatherInto(bytesOf(destination));
      return;
    }
    const gathered = allocate(this.dtype, this.numel);
    await this.gatherInto(bytesOf(gathered));
    convertElements(gathered, this.dtype, destination, target);
  }

  /**
   * The elements in row-major order as successive typed arrays of `dtype` (reused between steps:
   * consume each before asking for the next). Memory stays bounded for contiguous tensors.
   */
  async *chunks(options: ReadOptions = {}): AsyncGenerator<TypedArray> {
    const target = options.dtype ?? this.dtype;
    if (this.numel === 0) return;
    if (!this.isContiguous) {
      yield await this.read({ dtype: target });
      return;
    }
    let converted: TypedArray | undefined;
    for await (const chunk of this.contiguousChunks(this.contiguousByteStart())) {
      if (target === this.dtype) {
        yield chunk;
        continue;
      }
      if (!converted || converted.length < chunk.length) converted = allocate(target, chunk.length);
      const out = converted.subarray(0, chunk.length);
      convertElements(chunk, this.dtype, out, target);
      yield out;
    }
  }

  private get needsSwap(): boolean {
    return this.storage.bigEndian && itemSize(this.dtype) > 1;
  }

  private contiguousByteStart(): number {
    return this.storageOffset * itemSize(this.dtype);
  }

  private checkDestination(destination: TypedArray, target: DType): void {
    if (!canConvert(this.dtype, target)) {
      throw new TensorError("UNSUPPORTED_CONVERSION", `cannot read ${this.dtype} as ${target}`, {
        ...this.where,
        hint: `Read it as ${this.dtype}.`,
      });
    }
    const info = dtypeInfo(target);
    const kind = arrayKindOf(destination);
    const expectedLength =
      info.kind === "raw"
        ? (byteLengthOf(target, this.numel) ?? 0)
        : this.numel * (info.kind === "complex" ? 2 : 1);
    if (kind !== info.array || destination.length !== expectedLength) {
      throw new TensorError(
        "BAD_DESTINATION",
        `destination is a ${kind} of ${destination.length} elements; reading ${this.dtype} [${this.shape}] as ${target} needs a ${info.array} of ${expectedLength}`,
        {
          ...this.where,
          hint:
            target === this.dtype && this.dtype !== "float32"
              ? "Pass { dtype: 'float32' } (or another dtype) to convert while reading."
              : undefined,
        },
      );
    }
  }

  /**
   * A conversion to a dtype at least as wide, done inside the destination: the stored bytes are
   * read into its last `byteLength` bytes, then converted front to back (each element is read
   * before anything is written over it), so there is no scratch buffer and no second copy.
   */
  private async readWidening(start: number, destination: TypedArray, target: DType): Promise<void> {
    const bytes = bytesOf(destination);
    const stored = bytes.subarray(bytes.byteLength - this.byteLength);
    await this.storage.source.readInto(start, stored);
    if (this.needsSwap) swapBytes(stored, itemSize(this.dtype));
    convertElements(viewAs(this.dtype, stored), this.dtype, destination, target);
  }

  /** Contiguous source elements in chunks, swapped to little-endian, as typed arrays of this dtype. */
  private async *contiguousChunks(start: number): AsyncGenerator<TypedArray> {
    const size = itemSize(this.dtype);
    const total = this.byteLength;
    // A whole ArrayBuffer (8-byte aligned, so any element type can view it); larger tensors share
    // reused full-size buffers, the pages of a new one costing a fault each on first touch.
    const buffer = total < REUSED_SCRATCH_MIN ? new ArrayBuffer(total) : takeScratch(CHUNK_BYTES);
    try {
      const scratch = new Uint8Array(buffer, 0, Math.min(CHUNK_BYTES, total));
      const step = scratch.byteLength - (scratch.byteLength % size);
      for (let done = 0; done < total; done += step) {
        const length = Math.min(step, total - done);
        const bytes = scratch.subarray(0, length);
        await this.storage.source.readInto(start + done, bytes);
        if (this.needsSwap) swapBytes(bytes, size);
        yield viewAs(this.dtype, bytes);
      }
    } finally {
      // Also when the consumer stops early: the buffer is its again only after the last chunk.
      if (total >= REUSED_SCRATCH_MIN) giveBackScratch(buffer);
    }
  }

  private async gatherInto(destination: Uint8Array): Promise<void> {
    await gatherStrided({
      source: this.storage.source,
      elementSize: itemSize(this.dtype),
      shape: this.shape,
      strides: this.strides,
      storageOffset: this.storageOffset,
      destination,
    });
    if (this.needsSwap) swapBytes(destination, itemSize(this.dtype));
  }
}

/**
 * Whether elements of `from` can be converted to `to` inside a destination of `to` (convertible
 * numeric dtypes whose elements are no narrower; not complex, whose arrays hold two numbers).
 */
function widensInPlace(from: DType, to: DType): boolean {
  const source = dtypeInfo(from);
  const target = dtypeInfo(to);
  return (
    source.kind !== "complex" &&
    target.kind !== "complex" &&
    source.kind !== "raw" &&
    target.kind !== "raw" &&
    target.bits >= source.bits
  );
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Whether every value is a non-negative safe integer (a plain loop: this runs per tensor). */
function allCounts(values: readonly number[]): boolean {
  for (let i = 0; i < values.length; i++) if (!isCount(values[i]!)) return false;
  return true;
}

/** Reverses the bytes of each `size`-byte element in place. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * Tensors kept for the life of the module, so that their hidden class outlives a full garbage
 * collection: see SHAPE_KEEPERS in formats/pickle/values.ts. Over storages of two kinds (a
 * frozen torch storage is made elsewhere; these are the plain kind safetensors makes) with
 * sources of two classes, so that the kept classes' fields are general.
 */
export const TENSOR_SHAPE_KEEPERS: readonly Tensor[] = [
  new MemorySource(new Uint8Array(4)),
  new SliceSource(new MemorySource(new Uint8Array(4)), 0, 4, ""),
].map(
  (source) =>
    new Tensor({
      storage: { source, dtype: "float32", bigEndian: false },
      shape: [1],
    }),
);
