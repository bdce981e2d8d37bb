import { readFileSync } from "node:fs";
import type { KeyInfo } from "../../src/keys/match.js";
import { convertElements } from "../../src/tensors/convert.js";
import { allocate, type DType, type TypedArray } from "../../src/tensors/dtype.js";
import { numelOf } from "../../src/tensors/shape.js";
import type { ReadOptions } from "../../src/tensors/tensor.js";
import type { TensorLike } from "../../src/tensors/tensor-like.js";

/** An in-memory TensorLike that counts its reads and converts dtype on request. */
export interface MemoryTensor extends TensorLike {
  reads: number;
}

export function memoryTensor(
  dtype: DType,
  shape: readonly number[],
  values: TypedArray | readonly number[],
): MemoryTensor {
  const data = ArrayBuffer.isView(values) ? values : fromNumbers(dtype, shape, values);
  const tensor: MemoryTensor = {
    dtype,
    shape,
    reads: 0,
    async read(options: ReadOptions = {}) {
      tensor.reads++;
      const to = options.dtype ?? dtype;
      const out = allocate(to, numelOf(shape));
      convertElements(data, dtype, out, to);
      return out;
    },
  };
  return tensor;
}

function fromNumbers(dtype: DType, shape: readonly number[], values: readonly number[]) {
  const data = allocate(dtype, numelOf(shape));
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    values.forEach((v, i) => {
      data[i] = BigInt(v);
    });
  } else {
    data.set(values);
  }
  return data;
}

/** A typed array of `dtype` holding the given raw bit patterns (hex strings, as the fixtures store them). */
export function fromHexBits(dtype: DType, hex: readonly string[]): TypedArray {
  const width = hex[0]?.length ?? 0;
  if (width === 16) {
    const bits = BigUint64Array.from(hex, (h) => BigInt(`0x${h}`));
    return dtype === "complex128" || dtype === "float64"
      ? new Float64Array(bits.buffer)
      : new BigInt64Array(bits.buffer);
  }
  if (width === 8) {
    const bits = Uint32Array.from(hex, (h) => Number.parseInt(h, 16));
    return new Float32Array(bits.buffer);
  }
  return Uint16Array.from(hex, (h) => Number.parseInt(h, 16));
}

/** The raw bit patterns of a float typed array, as hex strings. */
export function toHexBits(array: TypedArray): string[] {
  const hexOf = (v: number | bigint, digits: number) => v.toString(16).padStart(digits, "0");
  if (array instanceof Float64Array) {
    return [...new BigUint64Array(array.buffer, array.byteOffset, array.length)].map((v) =>
      hexOf(v, 16),
    );
  }
  if (array instanceof Float32Array) {
    return [...new Uint32Array(array.buffer, array.byteOffset, array.length)].map((v) =>
      hexOf(v, 8),
    );
  }
  return [...(array as Uint16Array)].map((v) => hexOf(v, 4));
}

export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`fixtures/${name}`, import.meta.url), "utf8")) as T;
}

type KeyList = [key: string, shape: number[], dtype: DType][];

/** The fixture's state dicts: wrapper name → key → shape and dtype, in PyTorch's order. */
export function wrappedKeys(): Record<string, Map<string, KeyInfo>> {
  const raw = readFixture<Record<string, KeyList>>("wrapped-keys.json");
  return Object.fromEntries(
    Object.entries(raw).map(([name, list]) => [
      name,
      new Map(list.map(([key, shape, dtype]) => [key, { shape, dtype }])),
    ]),
  );
}

/** A key-info dict from keys, every tensor of shape [2] unless given. */
export function keyInfo(
  keys: readonly string[],
  shapeOf: (key: string) => number[] = () => [2],
): Map<string, KeyInfo> {
  return new Map(keys.map((key) => [key, { shape: shapeOf(key), dtype: "float32" as DType }]));
}
