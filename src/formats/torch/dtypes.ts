import type { DType } from "../../tensors/dtype.js";

/**
 * torch's names for element types: the storage classes a pickle names in its persistent ids
 * (`torch.FloatStorage`, `torch.cuda.HalfStorage`, `torch.storage.UntypedStorage`) and the dtype
 * globals `_rebuild_tensor_v3` passes (`torch.float32`, `torch.float8_e4m3fn`, ...).
 */

/** What a storage class says about its elements: a dtype, or raw bytes (untyped). */
export type StorageKind =
  | { kind: "typed"; dtype: DType }
  | { kind: "untyped" }
  /** Known to torch but not readable here (quantized storages). */
  | { kind: "unsupported"; what: string };

/** The dtype of a readable storage's elements: its own, or bytes for an untyped storage. */
export function storageDType(kind: Exclude<StorageKind, { kind: "unsupported" }>): DType {
  return kind.kind === "typed" ? kind.dtype : "uint8";
}

const TYPED_STORAGES: Readonly<Record<string, DType>> = {
  DoubleStorage: "float64",
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  ComplexFloatStorage: "complex64",
  ComplexDoubleStorage: "complex128",
};

const QUANTIZED_STORAGES = new Set([
  "QInt8Storage",
  "QUInt8Storage",
  "QInt32Storage",
  "QUInt4x2Storage",
  "QUInt2x4Storage",
]);

/** Modules torch's own unpickler accepts storage classes from (CPU and CUDA). */
const STORAGE_MODULES = new Set(["torch", "torch.cuda"]);

/**
 * The kinds storageKind answers, made once: optimized code that reads a kind keeps its hidden
 * class only weakly, so kinds made afresh for each checkpoint threw that code away whenever the
 * last checkpoint's kinds were collected.
 */
const UNTYPED_KIND: StorageKind = Object.freeze({ kind: "untyped" });
const TYPED_KINDS: ReadonlyMap<string, StorageKind> = new Map(
  Object.entries(TYPED_STORAGES).map(([name, dtype]) => [
    name,
    Object.freeze({ kind: "typed", dtype }),
  ]),
);

/** The element type of a storage class named `module.name`, or undefined if it is not one. */
export function storageKind(module: string, name: string): StorageKind | undefined {
  if (
    (module === "torch.storage" || module === "torch") &&
    (name === "UntypedStorage" || name === "TypedStorage")
  ) {
    // Both hold raw bytes; a tensor over them gets its dtype from _rebuild_tensor_v3.
    return UNTYPED_KIND;
  }
  if (!STORAGE_MODULES.has(module)) return undefined;
  const typed = TYPED_KINDS.get(name);
  if (typed !== undefined) return typed;
  if (QUANTIZED_STORAGES.has(name))
    return { kind: "unsupported", what: `quantized storage ${module}.${name}` };
  return undefined;
}

const TORCH_DTYPES: Readonly<Record<string, DType>> = {
  float64: "float64",
  double: "float64",
  float32: "float32",
  float: "float32",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  int64: "int64",
  long: "int64",
  int32: "int32",
  int: "int32",
  int16: "int16",
  short: "int16",
  int8: "int8",
  uint8: "uint8",
  uint16: "uint16",
  uint32: "uint32",
  uint64: "uint64",
  bool: "bool",
  complex64: "complex64",
  cfloat: "complex64",
  complex128: "complex128",
  cdouble: "complex128",
  float8_e4m3fn: "float8_e4m3fn",
  float8_e5m2: "float8_e5m2",
  float8_e4m3fnuz: "float8_e4m3fnuz",
  float8_e5m2fnuz: "float8_e5m2fnuz",
  float8_e8m0fnu: "float8_e8m0fnu",
};

/** torch dtypes that exist but that loadout cannot hold (packed, quantized, sub-byte, complex32). */
const UNSUPPORTED_TORCH_DTYPES = new Set([
  "complex32",
  "chalf",
  "float4_e2m1fn_x2",
  "qint8",
  "quint8",
  "qint32",
  "quint4x2",
  "quint2x4",
  "bits1x8",
  "bits2x4",
  "bits4x2",
  "bits8",
  "bits16",
  "bit",
  ...[1, 2, 3, 4, 5, 6, 7].flatMap((n) => [`int${n}`, `uint${n}`]),
]);

/** The DType of the torch dtype global `module.name`, e.g. `torch.bfloat16`. */
export function torchDType(
  module: string,
  name: string,
): { dtype: DType } | { unsupported: string } | undefined {
  if (module !== "torch") return undefined;
  // Own keys only: a pickle may name torch.constructor or torch.toString.
  if (Object.hasOwn(TORCH_DTYPES, name)) return { dtype: TORCH_DTYPES[name]! };
  if (UNSUPPORTED_TORCH_DTYPES.has(name)) return { unsupported: `torch.${name}` };
  return undefined;
}
