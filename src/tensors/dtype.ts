/**
 * Element types, named as PyTorch names them. Each knows its size in bits and the typed array
 * that holds it; types JavaScript has no array for (float16, bfloat16, float8...) are held as
 * their raw bits (Uint16Array, Uint8Array).
 */

export type TypedArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export type ArrayKind =
  | "Float64Array"
  | "Float32Array"
  | "Int32Array"
  | "Int16Array"
  | "Int8Array"
  | "Uint8Array"
  | "Uint16Array"
  | "Uint32Array"
  | "BigInt64Array"
  | "BigUint64Array";

export interface DTypeInfo {
  readonly name: DType;
  /** Bits per element (4 and 6 exist in safetensors' microscaling types). */
  readonly bits: number;
  /** The typed array `read()` returns for this dtype. */
  readonly array: ArrayKind;
  /** How each element's value is decoded: numbers loadout can convert, or opaque bits. */
  readonly kind: "float" | "int" | "uint" | "bool" | "complex" | "raw";
  /** safetensors' name for it. */
  readonly safetensors: string;
}

const table = {
  float64: { bits: 64, array: "Float64Array", kind: "float", safetensors: "F64" },
  float32: { bits: 32, array: "Float32Array", kind: "float", safetensors: "F32" },
  float16: { bits: 16, array: "Uint16Array", kind: "float", safetensors: "F16" },
  bfloat16: { bits: 16, array: "Uint16Array", kind: "float", safetensors: "BF16" },
  int64: { bits: 64, array: "BigInt64Array", kind: "int", safetensors: "I64" },
  int32: { bits: 32, array: "Int32Array", kind: "int", safetensors: "I32" },
  int16: { bits: 16, array: "Int16Array", kind: "int", safetensors: "I16" },
  int8: { bits: 8, array: "Int8Array", kind: "int", safetensors: "I8" },
  uint64: { bits: 64, array: "BigUint64Array", kind: "uint", safetensors: "U64" },
  uint32: { bits: 32, array: "Uint32Array", kind: "uint", safetensors: "U32" },
  uint16: { bits: 16, array: "Uint16Array", kind: "uint", safetensors: "U16" },
  uint8: { bits: 8, array: "Uint8Array", kind: "uint", safetensors: "U8" },
  bool: { bits: 8, array: "Uint8Array", kind: "bool", safetensors: "BOOL" },
  complex64: { bits: 64, array: "Float32Array", kind: "complex", safetensors: "C64" },
  complex128: { bits: 128, array: "Float64Array", kind: "complex", safetensors: "C128" },
  float8_e4m3fn: { bits: 8, array: "Uint8Array", kind: "raw", safetensors: "F8_E4M3" },
  float8_e5m2: { bits: 8, array: "Uint8Array", kind: "raw", safetensors: "F8_E5M2" },
  float8_e8m0fnu: { bits: 8, array: "Uint8Array", kind: "raw", safetensors: "F8_E8M0" },
  float8_e4m3fnuz: { bits: 8, array: "Uint8Array", kind: "raw", safetensors: "F8_E4M3FNUZ" },
  float8_e5m2fnuz: { bits: 8, array: "Uint8Array", kind: "raw", safetensors: "F8_E5M2FNUZ" },
  float6_e2m3: { bits: 6, array: "Uint8Array", kind: "raw", safetensors: "F6_E2M3" },
  float6_e3m2: { bits: 6, array: "Uint8Array", kind: "raw", safetensors: "F6_E3M2" },
  float4_e2m1: { bits: 4, array: "Uint8Array", kind: "raw", safetensors: "F4" },
} as const satisfies Record<string, Omit<DTypeInfo, "name">>;

export type DType = keyof typeof table;

export const DTYPES: ReadonlyMap<DType, DTypeInfo> = new Map(
  Object.entries(table).map(([name, info]) => [name as DType, { name: name as DType, ...info }]),
);

export function dtypeInfo(dtype: DType): DTypeInfo {
  return DTYPES.get(dtype)!;
}

export function isDType(name: string): name is DType {
  return DTYPES.has(name as DType);
}

const bySafetensorsName = new Map([...DTYPES.values()].map((info) => [info.safetensors, info]));

/** The dtype of a safetensors dtype string (`F32`, `BF16`, ...), or undefined if unknown. */
export function dtypeFromSafetensors(name: string): DType | undefined {
  return bySafetensorsName.get(name)?.name;
}

/** Bytes taken by `numel` elements; undefined when they do not fill whole bytes. */
export function byteLengthOf(dtype: DType, numel: number): number | undefined {
  const bits = dtypeInfo(dtype).bits;
  if (bits % 8 === 0) return numel * (bits / 8);
  const total = numel * bits;
  return total % 8 === 0 ? total / 8 : undefined;
}

/** Bytes per element for whole-byte dtypes (every dtype a torch storage can have). */
export function itemSize(dtype: DType): number {
  const bits = dtypeInfo(dtype).bits;
  return bits % 8 === 0 ? bits / 8 : 1;
}

const arrayConstructors = {
  Float64Array,
  Float32Array,
  Int32Array,
  Int16Array,
  Int8Array,
  Uint8Array,
  Uint16Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
} as const;

/** A new zeroed typed array holding `numel` elements of `dtype`. */
export function allocate(dtype: DType, numel: number): TypedArray {
  const info = dtypeInfo(dtype);
  if (info.kind === "raw") return new Uint8Array(byteLengthOf(dtype, numel) ?? 0);
  const perElement = info.kind === "complex" ? 2 : 1;
  return new arrayConstructors[info.array](numel * perElement);
}

/** A typed array of `dtype`'s kind viewing `bytes` (which must be suitably aligned). */
export function viewAs(dtype: DType, bytes: Uint8Array): TypedArray {
  const Ctor = arrayConstructors[dtypeInfo(dtype).array];
  return new Ctor(
    bytes.buffer as ArrayBuffer,
    bytes.byteOffset,
    bytes.byteLength / Ctor.BYTES_PER_ELEMENT,
  );
}

/** Name of a typed array's constructor, for matching it against a dtype. */
export function arrayKindOf(array: TypedArray): ArrayKind {
  return array.constructor.name as ArrayKind;
}

/** The bytes under a typed array. */
export function bytesOf(array: TypedArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Whether values of `dtype` are floating point (including raw float8/float4 formats). */
export function isFloating(dtype: DType): boolean {
  const info = dtypeInfo(dtype);
  return info.kind === "float" || (info.kind === "raw" && dtype.startsWith("float"));
}
