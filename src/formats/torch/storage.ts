import { type ByteSource, MemorySource } from "../../io/byte-source.js";
import type { DType } from "../../tensors/dtype.js";
import { type Storage, Tensor } from "../../tensors/tensor.js";
import type { PyObjectLike } from "../pickle/values.js";
import { ZIP_SHAPE_KEEPERS } from "../zip/zip.js";

/**
 * A torch storage as the unpickler sees it: what a persistent id resolves to and what the
 * rebuild functions receive. Its bytes are a lazy source (a zip entry, a region of a legacy file).
 */
export interface TorchStorage extends Storage, PyObjectLike {
  /** Untyped storages hold bytes; a tensor over one takes its dtype from `_rebuild_tensor_v3`. */
  readonly untyped: boolean;
  /** The key the file stores it under (`data/<key>` in a zip), for messages. */
  readonly key: string;
}

/** The Python class a torch storage reports: one of the two that isTorchStorage accepts. */
export function storagePyClass(untyped: boolean): string {
  return untyped ? "torch.storage.UntypedStorage" : "torch.storage.TypedStorage";
}

export function makeTorchStorage(init: {
  source: ByteSource;
  dtype: DType;
  bigEndian: boolean;
  untyped: boolean;
  key: string;
}): TorchStorage {
  // Spelled out rather than spread: one storage per tensor, and a literal is cheaper to build.
  // Not frozen, as a Tensor is not: Object.freeze is a call into the runtime, once per tensor.
  return {
    pyClass: storagePyClass(init.untyped),
    source: init.source,
    dtype: init.dtype,
    bigEndian: init.bigEndian,
    untyped: init.untyped,
    key: init.key,
  };
}

export function isTorchStorage(value: unknown): value is TorchStorage {
  if (
    typeof value !== "object" ||
    value === null ||
    !("source" in value) ||
    !("untyped" in value)
  ) {
    return false;
  }
  const pyClass = (value as { pyClass?: unknown }).pyClass;
  return pyClass === "torch.storage.UntypedStorage" || pyClass === "torch.storage.TypedStorage";
}

const retyped = new WeakMap<TorchStorage, Map<DType, Storage>>();

/**
 * The storage's bytes seen as `dtype` (what `_rebuild_tensor_v3` does with an untyped storage).
 * The same object for the same storage and dtype, so shared storage stays shared.
 */
export function storageAs(storage: TorchStorage, dtype: DType): Storage {
  if (storage.dtype === dtype) return storage;
  let views = retyped.get(storage);
  if (!views) {
    views = new Map();
    retyped.set(storage, views);
  }
  let view = views.get(dtype);
  if (!view) {
    view = Object.freeze({ source: storage.source, dtype, bigEndian: storage.bigEndian });
    views.set(dtype, view);
  }
  return view;
}

/**
 * Storages kept for the life of the module, so that the hidden class of a storage made here (a
 * legacy file's; a zip file's is a ZipStorage) outlives a full garbage collection: see
 * SHAPE_KEEPERS in formats/pickle/values.ts. Two, over
 * sources of two classes (a zip entry's, and bytes in memory), so that the kept class's
 * `source` field is general (see ZIP_SHAPE_KEEPERS in formats/zip/zip.ts).
 */
export const STORAGE_SHAPE_KEEPERS: readonly TorchStorage[] = [
  ZIP_SHAPE_KEEPERS[0]!.source,
  new MemorySource(new Uint8Array(0)),
].map((source) =>
  makeTorchStorage({ source, dtype: "float32", bigEndian: false, untyped: false, key: "" }),
);

/** A tensor over a kept torch storage, beside TENSOR_SHAPE_KEEPERS' tensors over plain storages. */
export const TORCH_TENSOR_SHAPE_KEEPER = new Tensor({
  storage: STORAGE_SHAPE_KEEPERS[0]!,
  shape: [0],
});
