import type { PyDict, PyValue } from "./values.js";

/**
 * What the plain JavaScript value model cannot say by itself: which Sets are frozensets and
 * which Uint8Arrays are bytearrays (both matter for hashability), and the attributes BUILD gave
 * a dict, list or other object that has no field for them (torch state dicts carry `_metadata`
 * this way). Kept in weak tables so the values stay plain.
 */

const frozenSets = new WeakSet<Set<PyValue>>();
const byteArrays = new WeakSet<Uint8Array>();
const attributes = new WeakMap<object, PyDict>();

/** Marks `set` as a Python frozenset and returns it. */
export function markFrozenSet(set: Set<PyValue>): Set<PyValue> {
  frozenSets.add(set);
  return set;
}

/** Whether `value` was a Python frozenset (a Set that is not is a mutable set). */
export function isFrozenSet(value: unknown): value is Set<PyValue> {
  return value instanceof Set && frozenSets.has(value);
}

/** Marks `bytes` as a Python bytearray and returns it. */
export function markByteArray(bytes: Uint8Array): Uint8Array {
  byteArrays.add(bytes);
  return bytes;
}

/** Whether `value` was a Python bytearray (a Uint8Array that is not was bytes). */
export function isByteArray(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && byteArrays.has(value);
}

/** Attributes BUILD set on `value` (e.g. an OrderedDict's `_metadata`), if any. */
export function pyAttributes(value: unknown): PyDict | undefined {
  return typeof value === "object" && value !== null ? attributes.get(value) : undefined;
}

/** Merges `entries` into `target`'s attributes, as Python's default __setstate__ updates __dict__. */
export function addPyAttributes(target: object, entries: PyDict): void {
  let existing = attributes.get(target);
  if (!existing) {
    existing = new Map();
    attributes.set(target, existing);
  }
  for (const [key, value] of entries) existing.set(key, value);
}
