import { PickleError } from "../../errors.js";
import { isByteArray, isFrozenSet } from "./markers.js";
import { isTuple, type PyValue } from "./values.js";

/**
 * Python refuses mutable containers as dict keys and set members; so does loadout, or a file
 * could build structures Python itself cannot (a set containing itself).
 */

/** A tuple's verdict never changes (its items cannot), so each is walked once. */
const tupleVerdicts = new WeakMap<readonly PyValue[], string | null>();

/** Python's type name of `value` if that type is unhashable by itself, else undefined. */
function unhashableType(value: PyValue): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  if (Array.isArray(value)) return isTuple(value) ? undefined : "list";
  if (value instanceof Map) return "dict";
  if (value instanceof Set) return isFrozenSet(value) ? undefined : "set";
  if (isByteArray(value)) return "bytearray";
  return undefined;
}

/**
 * The unhashable type inside `value` ("list", "dict", "set", "bytearray"), looking through
 * nested tuples without recursion and visiting each tuple once; undefined when hashable.
 */
export function unhashablePart(value: PyValue): string | undefined {
  const direct = unhashableType(value);
  if (direct !== undefined || !isTuple(value)) return direct;
  const cached = tupleVerdicts.get(value);
  if (cached !== undefined) return cached ?? undefined;
  const visited = new Set<readonly PyValue[]>([value]);
  const pending: (readonly PyValue[])[] = [value];
  let verdict: string | null = null;
  while (pending.length > 0 && verdict === null) {
    const tuple = pending.pop()!;
    for (const item of tuple) {
      const type = unhashableType(item);
      if (type !== undefined) {
        verdict = type;
        break;
      }
      if (!isTuple(item) || visited.has(item)) continue;
      const known = tupleVerdicts.get(item);
      if (known === null) continue;
      if (known !== undefined) {
        verdict = known;
        break;
      }
      visited.add(item);
      pending.push(item);
    }
  }
  // A hashable verdict holds for every tuple visited; an unhashable one only for the outer one.
  if (verdict === null) for (const tuple of visited) tupleVerdicts.set(tuple, null);
  else tupleVerdicts.set(value, verdict);
  return verdict ?? undefined;
}

/** Throws PickleError `UNHASHABLE` when `value` cannot be a dict key or set member. */
export function checkHashable(value: PyValue, role: "dict key" | "set member"): void {
  if (typeof value !== "object" || value === null) return;
  const type = unhashablePart(value);
  if (type === undefined) return;
  const inside = unhashableType(value) === undefined ? ` (inside a tuple)` : "";
  throw new PickleError("UNHASHABLE", `unhashable type '${type}'${inside} used as a ${role}`, {
    hint: "Python itself could not have pickled this: the file is corrupt or crafted.",
  });
}
