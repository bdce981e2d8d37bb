import { isDict, OpaqueObject, type PyValue } from "../formats/pickle/values.js";
import { Tensor } from "../tensors/tensor.js";

/**
 * Walking the unpickled tree. A path is a list of segments: string keys, and numbers for list
 * indices and integer dict keys. Every walk is iterative and visits each container once, so
 * shared references ("billion laughs") and self-references cost nothing extra.
 */

export type PathSegment = string | number;
export type TreePath = readonly PathSegment[];

export interface TensorEntry {
  path: TreePath;
  tensor: Tensor;
}

/** A dict key as a path segment: strings and numbers as themselves, anything else as text. */
function keySegment(key: PyValue): PathSegment {
  if (typeof key === "string" || typeof key === "number") return key;
  if (typeof key === "bigint" || typeof key === "boolean") return String(key);
  return describeValue(key);
}

/** The children of a container (dict, list, tuple, set, opaque object's state and items). */
export function childrenOf(value: PyValue): [PathSegment, PyValue][] {
  if (isDict(value)) return [...value].map(([k, v]) => [keySegment(k), v]);
  if (Array.isArray(value)) return value.map((v, i) => [i, v]);
  if (value instanceof Set) return [...value].map((v, i) => [i, v]);
  if (value instanceof OpaqueObject) {
    // An opaque object is transparent in paths: its state's keys continue the path.
    const children: [PathSegment, PyValue][] = [];
    if (value.state !== undefined) {
      if (isDict(value.state)) children.push(...childrenOf(value.state));
      else children.push(["__state__", value.state]);
    }
    if (value.dictItems) children.push(...childrenOf(value.dictItems));
    if (value.listItems) children.push(...childrenOf(value.listItems));
    if (value.args.length > 0 && children.length === 0)
      children.push(["__args__", [...value.args]]);
    return children;
  }
  return [];
}

function isContainer(value: PyValue): boolean {
  return (
    isDict(value) || Array.isArray(value) || value instanceof Set || value instanceof OpaqueObject
  );
}

/**
 * Calls `visit` for every value reachable from `root`, depth first in document order, with its
 * path. Containers are entered once; `visit` returning false skips a container's children.
 */
export function walk(
  root: PyValue,
  visit: (value: PyValue, path: TreePath) => boolean | undefined,
): void {
  const seen = new Set<object>();
  const stack: { value: PyValue; path: TreePath }[] = [{ value: root, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (visit(value, path) === false || !isContainer(value)) continue;
    if (seen.has(value as object)) continue;
    seen.add(value as object);
    const children = childrenOf(value);
    for (let i = children.length - 1; i >= 0; i--) {
      const [segment, child] = children[i]!;
      stack.push({ value: child, path: [...path, segment] });
    }
  }
}

/** Every tensor in the tree with the first path it was found at. */
export function listTensors(root: PyValue): TensorEntry[] {
  const entries: TensorEntry[] = [];
  walk(root, (value, path) => {
    if (value instanceof Tensor) entries.push({ path, tensor: value });
    return undefined;
  });
  return entries;
}

/** The value at `path`, or undefined. */
export function getPath(root: PyValue, path: TreePath): PyValue | undefined {
  let current: PyValue | undefined = root;
  for (const segment of path) {
    if (current === undefined) return undefined;
    current = childAt(current, segment);
  }
  return current;
}

function childAt(value: PyValue, segment: PathSegment): PyValue | undefined {
  if (isDict(value)) {
    if (value.has(segment)) return value.get(segment);
    // Integer dict keys may arrive as strings from a command line.
    if (typeof segment === "string" && /^-?\d+$/.test(segment)) return value.get(Number(segment));
    return undefined;
  }
  if (Array.isArray(value))
    return typeof segment === "number" ? value[segment] : value[Number(segment)];
  if (value instanceof OpaqueObject) {
    return childrenOf(value).find(([s]) => s === segment)?.[1];
  }
  return undefined;
}

/** Human form of a path: segments joined by "/", e.g. `optimizer_states/0/state/3/exp_avg`. */
export function formatPath(path: TreePath): string {
  return path.map(String).join("/");
}

/** A short description of a value for tables and error messages. */
export function describeValue(value: PyValue): string {
  if (value === null) return "None";
  if (typeof value === "string")
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value);
  if (value instanceof Uint8Array) return `bytes(${value.byteLength})`;
  if (value instanceof Tensor) return `tensor(${value.dtype}, [${value.shape.join(", ")}])`;
  if (isDict(value)) return `dict(${value.size})`;
  if (Array.isArray(value)) return `${Object.isFrozen(value) ? "tuple" : "list"}(${value.length})`;
  if (value instanceof Set) return `set(${value.size})`;
  return value.pyClass;
}
