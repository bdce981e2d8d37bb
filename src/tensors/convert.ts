import { TensorError } from "../errors.js";
import { type DType, dtypeInfo, type TypedArray } from "./dtype.js";

/**
 * Element conversion between dtypes, as torch's `.to(dtype)` does it: floats to ints truncate
 * toward zero, anything to bool is `!= 0`, float64 reaches float16/bfloat16 through float32
 * (c10's Half and BFloat16 are built from a float, so torch rounds the same way).
 */

let halfTable: Float32Array | undefined;

/** All 65,536 float16 bit patterns as float32, built once on first use. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) table[h] = sign * fraction * 2 ** -24;
    else if (exponent === 31) table[h] = fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[h] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  halfTable = table;
  return table;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN), as c10 does. */
export function floatToBfloat16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0]!;
  if (Number.isNaN(f32[0]!)) return 0x7fc0;
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

/** float32 → float16 bits, rounding to nearest even, overflow to infinity, as c10 does. */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const halfMantissa = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let result = halfMantissa;
    if (remainder > halfway || (remainder === halfway && (halfMantissa & 1) === 1)) result += 1;
    return sign | result;
  }
  let result = (e << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (result & 1) === 1)) result += 1;
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  e = result >>> 10;
  return sign | (e >= 31 ? 0x7c00 : result);
}

export function halfBitsToFloat(bits: number): number {
  return halfToFloatTable()[bits & 0xffff]!;
}

export function bfloat16BitsToFloat(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** Whether `from` elements can be converted to `to` (numbers to numbers; raw types only to themselves). */
export function canConvert(from: DType, to: DType): boolean {
  if (from === to) return true;
  const a = dtypeInfo(from).kind;
  const b = dtypeInfo(to).kind;
  const numeric = (k: string) => k === "float" || k === "int" || k === "uint" || k === "bool";
  return numeric(a) && numeric(b);
}

/** Whether converting `from` to `to` can change a value (fewer bits, or float to int). */
export function isLossy(from: DType, to: DType): boolean {
  if (from === to) return false;
  const a = dtypeInfo(from);
  const b = dtypeInfo(to);
  if (b.kind === "bool") return a.kind !== "bool";
  if (a.kind === "float" && b.kind !== "float") return true;
  if (a.kind === "bool") return false;
  if (b.kind === "float") {
    // Integers fit exactly when the float's mantissa holds them.
    const mantissa = { float64: 53, float32: 24, float16: 11, bfloat16: 8 }[to as string] ?? 0;
    // Widening is exact (float16 and bfloat16 both fit float32); any narrowing rounds.
    if (a.kind === "float") return a.bits >= b.bits;
    return a.bits > mantissa;
  }
  return a.bits > b.bits || a.kind !== b.kind;
}

/** Writes `source` (elements of `from`) into `target` (elements of `to`), same length. */
export function convertElements(
  source: TypedArray,
  from: DType,
  target: TypedArray,
  to: DType,
): void {
  if (!canConvert(from, to)) {
    throw new TensorError("UNSUPPORTED_CONVERSION", `cannot convert ${from} to ${to}`, {
      hint: "Read it as its own dtype; only numeric dtypes convert.",
    });
  }
  if (from === to) {
    (target as Uint8Array).set(source as Uint8Array);
    return;
  }
  const n = source.length;
  // Fast paths for what loads do most: 16-bit floats widened to float32.
  if (to === "float32" && from === "bfloat16") {
    bfloat16ToFloat32(source as Uint16Array, target as Float32Array);
    return;
  }
  if (to === "float32" && from === "float16") {
    const table = halfToFloatTable();
    const out = target as Float32Array;
    const input = source as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = table[input[i]!]!;
    return;
  }
  const read = elementReader(source, from);
  const write = elementWriter(target, to);
  for (let i = 0; i < n; i++) write(i, read(i));
}

/** Typed-array words are in platform byte order; the paired loop below assumes little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A float32's bits are its bfloat16's bits followed by 16 zero bits. Two bfloat16 values are
 * read per 32-bit load (the low half is the first value, the high half the second), which runs
 * about half again as fast as one 16-bit load per value. Front to back, so the input may be the
 * upper part of the output's own memory (Tensor.readInto expands in place).
 */
function bfloat16ToFloat32(input: Uint16Array, output: Float32Array): void {
  const n = input.length;
  const out = new Int32Array(output.buffer, output.byteOffset, n);
  let i = 0;
  if (LITTLE_ENDIAN && input.byteOffset % 4 === 0) {
    const pairs = n >>> 1;
    const words = new Int32Array(input.buffer, input.byteOffset, pairs);
    for (let p = 0; p < pairs; p++, i += 2) {
      const word = words[p]!;
      out[i] = word << 16;
      out[i + 1] = word & 0xffff0000;
    }
  }
  for (; i < n; i++) out[i] = input[i]! << 16;
}

type Reader = (i: number) => number | bigint;
type Writer = (i: number, value: number | bigint) => void;

function elementReader(source: TypedArray, from: DType): Reader {
  if (from === "float16") {
    const table = halfToFloatTable();
    const input = source as Uint16Array;
    return (i) => table[input[i]!]!;
  }
  if (from === "bfloat16") {
    const input = source as Uint16Array;
    return (i) => bfloat16BitsToFloat(input[i]!);
  }
  return (i) => source[i]!;
}

function elementWriter(target: TypedArray, to: DType): Writer {
  const kind = dtypeInfo(to).kind;
  if (to === "float16") {
    const out = target as Uint16Array;
    return (i, v) => {
      out[i] = floatToHalfBits(Number(v));
    };
  }
  if (to === "bfloat16") {
    const out = target as Uint16Array;
    return (i, v) => {
      out[i] = floatToBfloat16Bits(Number(v));
    };
  }
  if (kind === "bool") {
    const out = target as Uint8Array;
    return (i, v) => {
      out[i] = v !== 0 && v !== 0n ? 1 : 0;
    };
  }
  if (target instanceof BigInt64Array || target instanceof BigUint64Array) {
    const out = target;
    return (i, v) => {
      out[i] = typeof v === "bigint" ? v : BigInt(Number.isFinite(v) ? Math.trunc(v) : 0);
    };
  }
  const out = target as Float64Array;
  if (kind === "float") {
    return (i, v) => {
      out[i] = Number(v);
    };
  }
  // Typed integer arrays wrap modulo 2^bits on store, as a C cast does; truncate first.
  return (i, v) => {
    out[i] = typeof v === "bigint" ? Number(BigInt.asIntN(32, v)) : Math.trunc(v);
  };
}
