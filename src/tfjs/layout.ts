import { LoadError } from "../errors.js";
import type { TypedArray } from "../tensors/dtype.js";
import { contiguousStrides, formatShape, numelOf } from "../tensors/shape.js";

/**
 * Axis permutations between PyTorch's and TensorFlow.js's weight layouts (row-major both):
 * Linear [out, in] → Dense [in, out] is the permutation [1, 0]; Conv2d [O, I, H, W] → Conv2D
 * [H, W, I, O] is [2, 3, 1, 0]. Output axis i is input axis perm[i].
 */

export function permutedShape(shape: readonly number[], perm: readonly number[]): number[] {
  return perm.map((axis) => shape[axis]!);
}

/** Whether `perm` reorders `rank` axes (each once). */
export function isPermutation(perm: readonly number[], rank: number): boolean {
  if (perm.length !== rank) return false;
  const seen = new Set(perm);
  return (
    seen.size === rank && perm.every((axis) => Number.isInteger(axis) && axis >= 0 && axis < rank)
  );
}

/**
 * Writes `source` (row-major, `shape`) into `destination` with its axes reordered by `perm`.
 * One element per value (no complex or packed types). Iterative over the output's index.
 */
export function permuteInto(
  source: TypedArray,
  shape: readonly number[],
  perm: readonly number[],
  destination: TypedArray,
): void {
  const rank = shape.length;
  const numel = numelOf(shape);
  if (!isPermutation(perm, rank) || source.length !== numel || destination.length !== numel) {
    throw new LoadError(
      "BAD_PERMUTATION",
      `cannot permute ${source.length} values of shape ${formatShape(shape)} by [${perm}] into ${destination.length}`,
    );
  }
  if (numel === 0) return;
  const out = destination as Float32Array;
  const input = source as Float32Array;
  if (rank === 0) {
    out[0] = input[0]!;
    return;
  }
  const sourceStrides = contiguousStrides(shape);
  const outShape = permutedShape(shape, perm);
  // Stride in the source of one step along each output axis.
  const step = perm.map((axis) => sourceStrides[axis]!);
  const last = rank - 1;
  const run = outShape[last]!;
  const runStep = step[last]!;
  const index = new Array<number>(rank).fill(0);
  let written = 0;
  while (written < numel) {
    let offset = 0;
    for (let d = 0; d < last; d++) offset += index[d]! * step[d]!;
    for (let i = 0; i < run; i++) out[written++] = input[offset + i * runStep]!;
    let d = last - 1;
    while (d >= 0) {
      index[d]!++;
      if (index[d]! < outShape[d]!) break;
      index[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
}

/** `source` with its axes reordered by `perm`, in a new array of the same kind. */
export function permute<T extends TypedArray>(
  source: T,
  shape: readonly number[],
  perm: readonly number[],
): T {
  const Ctor = source.constructor as new (length: number) => T;
  const destination = new Ctor(source.length);
  permuteInto(source, shape, perm, destination);
  return destination;
}
