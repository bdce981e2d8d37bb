import { LimitExceededError, LoadError } from "../errors.js";

/**
 * Plain data: what scheduler states and other small records become once out of the pickle tree.
 * JSON's value types, except that numbers may be non-finite (ReduceLROnPlateau's `best` starts
 * at inf): serialise those explicitly if you write JSON.
 */
export type PlainValue = null | boolean | number | string | PlainValue[] | PlainObject;
export interface PlainObject {
  [key: string]: PlainValue;
}

/** Values copied or converted at most; protects against shared references multiplying a tree. */
export const MAX_PLAIN_NODES = 100_000;

export function isPlainObject(value: unknown): value is PlainObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isPlainScalar(value: unknown): value is null | boolean | number | string {
  return (
    value === null ||
    typeof value === "boolean" ||
    typeof value === "number" ||
    typeof value === "string"
  );
}

/**
 * A deep copy of plain data, without recursion. Anything that is not plain data (a class
 * instance, a function, undefined, a bigint), a cycle, or more than `maxNodes` values is refused
 * with a LoadError naming where it sits (`what` names the value in messages).
 */
export function copyPlainValue(
  value: unknown,
  what = "value",
  maxNodes = MAX_PLAIN_NODES,
): PlainValue {
  const root: { value: PlainValue } = { value: null };
  // Paths are linked (parent, step) so descending costs O(1); spelled out only for errors.
  type Path = { parent: Path | undefined; step: string };
  type Task =
    | { source: unknown; path: Path; assign: (copy: PlainValue) => void }
    | { leave: object };
  const text = (path: Path): string => {
    const steps: string[] = [];
    for (let p: Path | undefined = path; p; p = p.parent) steps.push(p.step);
    return steps.reverse().join("");
  };
  const stack: Task[] = [
    {
      source: value,
      path: { parent: undefined, step: what },
      assign: (copy) => (root.value = copy),
    },
  ];
  const open = new Set<object>();
  let nodes = 0;
  for (let task = stack.pop(); task !== undefined; task = stack.pop()) {
    if ("leave" in task) {
      open.delete(task.leave);
      continue;
    }
    const { source, path, assign } = task;
    if (++nodes > maxNodes) {
      throw new LimitExceededError("maxPlainNodes", `${what} holds more than ${maxNodes} values`, {
        key: text(path),
      });
    }
    if (isPlainScalar(source)) {
      assign(source);
      continue;
    }
    const isArray = Array.isArray(source);
    if (!isArray && !isPlainObject(source)) {
      throw new LoadError(
        "NOT_PLAIN_DATA",
        `${text(path)} is a ${describeKind(source)}, not plain data`,
        {
          key: text(path),
          hint: "States hold only null, booleans, numbers, strings, arrays and plain objects.",
        },
      );
    }
    if (open.has(source)) {
      throw new LoadError("CYCLIC_VALUE", `${text(path)} contains itself`, { key: text(path) });
    }
    open.add(source);
    stack.push({ leave: source });
    if (isArray) {
      const copy: PlainValue[] = new Array(source.length).fill(null);
      assign(copy);
      for (let i = source.length - 1; i >= 0; i--) {
        stack.push({
          source: source[i],
          path: { parent: path, step: `[${i}]` },
          assign: (v) => (copy[i] = v),
        });
      }
    } else {
      const copy: PlainObject = {};
      const entries = Object.entries(source);
      // Keys are inserted now so the copy keeps the original key order.
      for (const [key] of entries) setOwn(copy, key, null);
      assign(copy);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, member] = entries[i]!;
        stack.push({
          source: member,
          path: { parent: path, step: `.${key}` },
          assign: (v) => setOwn(copy, key, v),
        });
      }
    }
  }
  return root.value;
}

/**
 * Sets an own, enumerable property, even one named `__proto__` (a key read from a file must never
 * change an object's prototype).
 */
export function setOwn<T>(object: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(object, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

function describeKind(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "object" && value !== null) return value.constructor?.name ?? "object";
  return typeof value;
}
