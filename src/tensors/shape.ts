/** Row-major strides (in elements) of a tensor of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d]!;
  }
  return strides;
}

/**
 * Steps a multi-dimensional index one place, last position fastest (an odometer): `index[k]`
 * counts below `sizes[axes[k]]`, or `sizes[k]` without `axes`. False once every position has
 * wrapped back to 0, that is, when the walk is over.
 */
export function nextIndex(
  index: number[],
  sizes: readonly number[],
  axes?: readonly number[],
): boolean {
  for (let k = index.length - 1; k >= 0; k--) {
    index[k]!++;
    if (index[k]! < sizes[axes === undefined ? k : axes[k]!]!) return true;
    index[k] = 0;
  }
  return false;
}

/** Number of elements of a tensor of `shape` (1 for a 0-d tensor). */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (let d = 0; d < shape.length; d++) n *= shape[d]!;
  return n;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** A trie node of interned shapes: the shape ending here, and longer shapes by their next size. */
interface ShapeNode {
  shape: readonly number[] | undefined;
  next: Map<number, ShapeNode> | undefined;
}

/** Longest shape interned, and how many trie nodes at most: beyond either, shapes are copied. */
const MAX_INTERNED_RANK = 8;
const MAX_INTERNED_NODES = 16384;
const internedRoot: ShapeNode = { shape: undefined, next: undefined };
let internedNodes = 0;

/**
 * A frozen array equal to `values`, shared by every caller that asks for the same values. A
 * model's tensors repeat a few dozen shapes and strides, and a 20,000-tensor checkpoint built
 * 40,000 small arrays that all lived as long as the checkpoint (and that each garbage
 * collection during the open copied). Only sizes that are non-negative safe integers, and not
 * -0 (a Map key cannot tell it from 0), are interned; anything else gets a frozen copy.
 */
export function internShape(values: readonly number[]): readonly number[] {
  if (values.length > MAX_INTERNED_RANK) return frozen(values);
  for (let d = 0; d < values.length; d++) {
    const size = values[d]!;
    if (!Number.isSafeInteger(size) || size < 0 || Object.is(size, -0)) return frozen(values);
  }
  let node = internedRoot;
  for (let d = 0; d < values.length; d++) {
    let child = node.next?.get(values[d]!);
    if (child === undefined) {
      // Each shape adds at most MAX_INTERNED_RANK nodes, so the count bounds the trie too.
      if (internedNodes >= MAX_INTERNED_NODES) return frozen(values);
      internedNodes++;
      child = { shape: undefined, next: undefined };
      node.next ??= new Map();
      node.next.set(values[d]!, child);
    }
    node = child;
  }
  node.shape ??= Object.freeze(values.slice());
  return node.shape;
}

function frozen(values: readonly number[]): readonly number[] {
  return Object.isFrozen(values) ? values : Object.freeze(values.slice());
}
