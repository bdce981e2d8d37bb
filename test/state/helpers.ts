import type { PyValue } from "../../src/formats/pickle/values.js";
import { makeTuple } from "../../src/formats/pickle/values.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { allocate, bytesOf, type DType } from "../../src/tensors/dtype.js";
import { Tensor } from "../../src/tensors/tensor.js";

/**
 * Building checkpoint trees by hand, as the unpicklers produce them: dicts as Maps, tuples as
 * frozen arrays, tensors over in-memory storages.
 */

/** A tensor of `dtype` holding `values` (numbers; bigints for int64), contiguous. */
export function tensorOf(
  values: readonly (number | bigint)[],
  shape: readonly number[] = [values.length],
  dtype: DType = "float32",
  name = "test.ckpt",
): Tensor {
  const array = allocate(dtype, values.length);
  values.forEach((v, i) => {
    (array as unknown as (number | bigint)[])[i] = v;
  });
  const storage = {
    source: new MemorySource(bytesOf(array).slice(), name),
    dtype,
    bigEndian: false,
  };
  return new Tensor({ storage, shape });
}

/** A 0-d float32 tensor, as torch stores Adam's `step`. */
export const scalarTensor = (value: number, dtype: DType = "float32") =>
  tensorOf([value], [], dtype);

/** A Python dict from entries. */
export const dict = (entries: readonly (readonly [PyValue, PyValue])[]): Map<PyValue, PyValue> =>
  new Map(entries.map(([k, v]) => [k, v]));

/** A Python tuple (typed as a value so it can sit anywhere in a tree). */
export const tuple = (...items: PyValue[]): PyValue => makeTuple(items) as PyValue[];

/** 0, 1, ..., n-1 scaled: distinct values whose sums are easy to compute in a test. */
export const ramp = (n: number, scale = 1, offset = 0) =>
  Array.from({ length: n }, (_, i) => offset + i * scale);

export const sum = (values: ArrayLike<number>) => Array.from(values).reduce((a, b) => a + b, 0);
