import { formatPath, type TreePath } from "../../checkpoint/tree.js";
import { TensorError, WriteError } from "../../errors.js";
import { byteLengthOf, type DType, isDType } from "../../tensors/dtype.js";
import { formatShape } from "../../tensors/shape.js";
import type { TensorLike } from "../../tensors/tensor-like.js";
import { PersistentId, PickleReduction, type PicklerHooks, PyGlobalName } from "./pickler.js";
import { PyOrderedDict } from "./python-values.js";

/**
 * Tensors in the pickle, as torch.save writes them (torch/_tensor.py `_reduce_ex_internal` and
 * torch/serialization.py `persistent_id`). Each distinct tensor gets its own storage, numbered
 * "0", "1", ... in the order the pickler meets them (torch numbers storages the same way), and
 * is written as
 *   torch._utils._rebuild_tensor_v2(
 *       persistent_id(("storage", torch.<Type>Storage, key, "cpu", numel)),
 *       0, size, stride, False, collections.OrderedDict())
 * or, for the dtypes torch gives no legacy storage class (uint16/32/64, float8), as
 *   torch._utils._rebuild_tensor_v3(
 *       persistent_id(("storage", torch.storage.UntypedStorage, key, "cpu", nbytes)),
 *       0, size, stride, False, collections.OrderedDict(), torch.<dtype>)
 * requires_grad is always False: what loadout writes are state dicts, whose tensors are detached.
 */

export interface StorageRecord {
  /** The storage's key: its record is `data/<key>`. */
  key: string;
  tensor: TensorLike;
  /** The dtype written (the tensor's own, or what it is converted to). */
  dtype: DType;
  shape: readonly number[];
  byteLength: number;
  /** Where the tensor was first met in the tree, for error messages. */
  path: string;
}

/** The dtype to write a tensor as, given where it was met. */
export type DTypeChoice = (tensor: TensorLike, path: string) => DType;

const TYPED_STORAGES: Partial<Record<DType, string>> = {
  float64: "DoubleStorage",
  float32: "FloatStorage",
  float16: "HalfStorage",
  bfloat16: "BFloat16Storage",
  int64: "LongStorage",
  int32: "IntStorage",
  int16: "ShortStorage",
  int8: "CharStorage",
  uint8: "ByteStorage",
  bool: "BoolStorage",
  complex64: "ComplexFloatStorage",
  complex128: "ComplexDoubleStorage",
};

/** torch.storage._new_dtypes() that loadout holds: written untyped, with the dtype as a global. */
const UNTYPED_DTYPES: ReadonlySet<DType> = new Set<DType>([
  "uint16",
  "uint32",
  "uint64",
  "float8_e4m3fn",
  "float8_e5m2",
  "float8_e4m3fnuz",
  "float8_e5m2fnuz",
  "float8_e8m0fnu",
]);

const REBUILD_V2 = new PyGlobalName("torch._utils", "_rebuild_tensor_v2");
const REBUILD_V3 = new PyGlobalName("torch._utils", "_rebuild_tensor_v3");
const UNTYPED_STORAGE = new PyGlobalName("torch.storage", "UntypedStorage");

/** Whether `value` has what a TensorLike has: a dtype loadout knows, a shape and read(). */
export function isTensorLike(value: unknown): value is TensorLike {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Partial<TensorLike>;
  return (
    typeof candidate.dtype === "string" &&
    isDType(candidate.dtype) &&
    Array.isArray(candidate.shape) &&
    typeof candidate.read === "function"
  );
}

/** torch's strides for a new contiguous tensor: sizes of 0 count as 1 (torch.zeros(2, 0, 3).stride() is (3, 3, 1)). */
export function torchStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= Math.max(shape[d]!, 1);
  }
  return strides;
}

/** Whether torch can hold `dtype` (it has no 6-bit floats; its 4-bit float is packed in pairs). */
export function torchCanWrite(dtype: DType): boolean {
  return TYPED_STORAGES[dtype] !== undefined || UNTYPED_DTYPES.has(dtype);
}

function checkShape(tensor: TensorLike, path: string): { numel: number } {
  const shape = tensor.shape;
  if (!shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
    throw new TensorError("BAD_SHAPE", `shape ${formatShape(shape)} is not a list of sizes`, {
      key: path,
    });
  }
  let numel = 1;
  for (const dim of shape) numel *= dim;
  if (!Number.isSafeInteger(numel)) {
    throw new TensorError("TOO_LARGE", `shape ${formatShape(shape)} has more than 2^53 elements`, {
      key: path,
    });
  }
  return { numel };
}

export interface TensorPickling {
  hooks: PicklerHooks;
  /** Storages in key order, filled in as the pickler meets tensors. */
  storages: StorageRecord[];
}

/** Pickler hooks that write TensorLike values as torch does, recording each one's storage. */
export function tensorPickling(chooseDType: DTypeChoice): TensorPickling {
  const storages: StorageRecord[] = [];

  function reduce(value: object, where: () => TreePath): PickleReduction | undefined {
    if (!isTensorLike(value)) return undefined;
    const at = where();
    const path = at.length > 0 ? formatPath(at) : "<root>";
    const { numel } = checkShape(value, path);
    const dtype = chooseDType(value, path);
    if (!torchCanWrite(dtype)) {
      throw new WriteError("UNSUPPORTED_DTYPE", `torch has no dtype that holds ${dtype}`, {
        key: path,
        hint: "Write it to safetensors instead, or leave this tensor out.",
      });
    }
    const byteLength = byteLengthOf(dtype, numel)!;
    const key = String(storages.length);
    const shape = Object.freeze([...value.shape]);
    storages.push({ key, tensor: value, dtype, shape, byteLength, path });
    const typed = TYPED_STORAGES[dtype];
    const storageClass = typed ? new PyGlobalName("torch", typed) : UNTYPED_STORAGE;
    const pid = new PersistentId(
      Object.freeze(["storage", storageClass, key, "cpu", typed ? numel : byteLength]),
    );
    const args = [
      pid,
      0,
      shape,
      Object.freeze(torchStrides(shape)),
      false,
      new PyOrderedDict(new Map()),
    ];
    if (typed) return new PickleReduction(REBUILD_V2, Object.freeze(args));
    return new PickleReduction(
      REBUILD_V3,
      Object.freeze([...args, new PyGlobalName("torch", dtype)]),
    );
  }

  return { hooks: { reduce }, storages };
}
