import type { TensorLike } from "../../tensors/tensor-like.js";

/**
 * What the torch writer can store, as plain JavaScript data: the reader's value model (dict a
 * Map, list an array, tuple a frozen array, bytes a Uint8Array) plus plain objects (dicts with
 * string keys), tensors, and two markers for what JavaScript cannot say by itself.
 *
 * Numbers: JavaScript has one number type and Python two. A number that is a safe integer (and
 * not -0) is written as a Python int; any other number as a float. Wrap a number in `pyFloat`
 * to write it as a float even when it is whole (a learning rate of 1 must stay 1.0).
 */

/** A number written as a Python float, even when it is a whole number. */
export class PyFloat {
  constructor(readonly value: number) {}
}

export function pyFloat(value: number): PyFloat {
  return new PyFloat(value);
}

/** A dict written as `collections.OrderedDict` (what `module.state_dict()` returns). */
export class PyOrderedDict {
  readonly items: ReadonlyMap<WritableValue, WritableValue>;
  constructor(items: ReadonlyMap<WritableValue, WritableValue>) {
    this.items = items;
  }
}

export function pyOrderedDict(
  items:
    | ReadonlyMap<WritableValue, WritableValue>
    | Iterable<readonly [WritableValue, WritableValue]>,
): PyOrderedDict {
  return new PyOrderedDict(items instanceof Map ? items : new Map(items));
}

/** A dict written as `collections.Counter` (a MultiStepLR's `milestones`: missing keys count 0). */
export class PyCounter {
  readonly counts: ReadonlyMap<WritableValue, number>;
  constructor(counts: ReadonlyMap<WritableValue, number>) {
    this.counts = counts;
  }
}

export type WritableValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyFloat
  | PyOrderedDict
  | PyCounter
  | TensorLike
  | readonly WritableValue[]
  | ReadonlyMap<WritableValue, WritableValue>
  | ReadonlySet<WritableValue>
  | { readonly [key: string]: WritableValue };

/** A tuple: a frozen array, as the reader gives Python tuples. */
export function pyTuple(items: readonly WritableValue[]): readonly WritableValue[] {
  return Object.freeze([...items]);
}
