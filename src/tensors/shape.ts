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
  return internPrefix(values, values.length);
}

/**
 * internShape of `values[0..length)`, for a caller that reads sizes into a buffer it reuses:
 * when the shape is already interned, nothing is allocated.
 */
export function internPrefix(values: readonly number[], length: number): readonly number[] {
  // An answer given again (a Tensor built from shapes its caller interned) is its own answer.
  if ((values === recent || values === previous) && values.length === length) return values;
  // Tensors come in runs of one shape and its strides: the last two answers are checked first.
  if (isPrefix(recent, values, length)) return recent;
  if (isPrefix(previous, values, length)) {
    const hit = previous;
    previous = recent;
    recent = hit;
    return hit;
  }
  const interned = internAnew(values, length);
  previous = recent;
  recent = interned;
  return interned;
}

/** The last two shapes internPrefix returned: frozen, so handing one out again is safe. */
let recent: readonly number[] = Object.freeze([]);
let previous: readonly number[] = recent;

/** Whether `shape` is `values[0..length)`, -0 told apart from 0 as the trie does. */
export function isPrefix(
  shape: readonly number[],
  values: readonly number[],
  length: number,
): boolean {
  if (shape.length !== length) return false;
  if (shape === values) return true;
  for (let d = 0; d < length; d++) {
    const value = values[d]!;
    if (value !== shape[d] || (value === 0 && 1 / value < 0)) return false;
  }
  return true;
}

function internAnew(values: readonly number[], length: number): readonly number[] {
  if (length > MAX_INTERNED_RANK) return frozenPrefix(values, length);
  for (let d = 0; d < length; d++) {
    const size = values[d]!;
    if (!Number.isSafeInteger(size) || size < 0 || Object.is(size, -0)) {
      return frozenPrefix(values, length);
    }
  }
  let node = internedRoot;
  for (let d = 0; d < length; d++) {
    let child = node.next?.get(values[d]!);
    if (child === undefined) {
      // Each shape adds at most MAX_INTERNED_RANK nodes, so the count bounds the trie too.
      if (internedNodes >= MAX_INTERNED_NODES) return frozenPrefix(values, length);
      internedNodes++;
      child = { shape: undefined, next: undefined };
      node.next ??= new Map();
      node.next.set(values[d]!, child);
    }
    node = child;
  }
  node.shape ??= frozenPrefix(values, length);
  return node.shape;
}

/**
 * A frozen copy of `values[0..length)`, built by pushing so that every shape handed out has
 * the same kind of elements (packed): a slice of a caller's `new Array(n)` is holey, and code
 * optimized for shapes of one kind was thrown away at the first of the other.
 */
function frozenPrefix(values: readonly number[], length: number): readonly number[] {
  const copy: number[] = [];
  for (let d = 0; d < length; d++) copy.push(values[d]!);
  return Object.freeze(copy);
}
