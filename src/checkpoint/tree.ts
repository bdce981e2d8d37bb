import { isDict, OpaqueObject, type PyValue } from "../formats/pickle/values.js";
import { Tensor } from "../tensors/tensor.js";
import { childPath, ListedTensor } from "./listed-tensor.js";

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
  walkPlaces(root, visitWithPath, visit);
}

function visitWithPath(
  visit: (value: PyValue, path: TreePath) => boolean | undefined,
  value: PyValue,
  parent: TreePath,
  segment: PathSegment | undefined,
): boolean | undefined {
  return visit(value, segment === undefined ? parent : childPath(parent, segment));
}

/**
 * walk, with each value's place given as its container's path and its own segment (undefined
 * for the root), and `state` passed to `visit`. Only containers get a path array of their own,
 * so that listing 20,000 tensors does not build 20,000 paths nobody may ask for.
 *
 * The walk keeps one frame per open container and reads its children in place (a dict through
 * its own iterators), rather than copying every child onto a stack: a state dict of 20,000
 * tensors grew such stacks to 20,000 slots, megabytes of garbage for each listing.
 *
 * `visit` should be a function made once, not a closure made per call: optimized code that
 * calls a closure keeps it only weakly, and was thrown away each time the last walk's closure
 * was collected.
 */
function walkPlaces<State>(
  root: PyValue,
  visit: (
    state: State,
    value: PyValue,
    parent: TreePath,
    segment: PathSegment | undefined,
  ) => boolean | undefined,
  state: State,
): void {
  const top: TreePath = [];
  if (visit(state, root, top, undefined) === false || !isContainer(root)) return;
  const seen = new Set<object>([root as object]);
  const frames: WalkFrame[] = [frameFor(root, top)];
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!;
    let child: PyValue;
    let segment: PathSegment;
    const keys = frame.keys;
    if (keys !== undefined) {
      const key = keys.next();
      if (key.done === true) {
        frames.pop();
        continue;
      }
      child = frame.values!.next().value as PyValue;
      segment = keySegment(key.value);
    } else {
      const items = frame.items!;
      const index = frame.index;
      if (index >= items.length) {
        frames.pop();
        continue;
      }
      frame.index = index + 1;
      child = items[index]!;
      segment = frame.segments === undefined ? index : frame.segments[index]!;
    }
    if (visit(state, child, frame.path, segment) === false || !isContainer(child)) continue;
    if (seen.has(child as object)) continue;
    seen.add(child as object);
    frames.push(frameFor(child, childPath(frame.path, segment)));
  }
}

/**
 * A container being walked: a dict's key and value iterators (advanced together), or a list
 * of children with their segments (a list's or tuple's own items, numbered by position).
 */
class WalkFrame {
  index = 0;
  constructor(
    readonly path: TreePath,
    readonly keys: Iterator<PyValue> | undefined,
    readonly values: Iterator<PyValue> | undefined,
    readonly items: readonly PyValue[] | undefined,
    readonly segments: readonly PathSegment[] | undefined,
  ) {}
}

function frameFor(container: PyValue, path: TreePath): WalkFrame {
  if (isDict(container)) {
    return new WalkFrame(path, container.keys(), container.values(), undefined, undefined);
  }
  if (Array.isArray(container))
    return new WalkFrame(path, undefined, undefined, container, undefined);
  const children = childrenOf(container);
  return new WalkFrame(
    path,
    undefined,
    undefined,
    children.map((child) => child[1]),
    children.map((child) => child[0]),
  );
}

/**
 * Frames kept for the life of the module, one of each kind, so that the frames' hidden class
 * (and the optimized walk that reads them) outlives a full garbage collection: see
 * SHAPE_KEEPERS in formats/pickle/values.ts. Without them every listing after a collection
 * ran the walk unoptimized ("weak objects" in V8's deoptimization trace).
 */
export const WALK_FRAME_SHAPE_KEEPERS: readonly WalkFrame[] = [
  frameFor(new Map(), []),
  frameFor([], []),
  frameFor(new Set(), []),
];

/** Every tensor in the tree with the first path it was found at. */
export function listTensors(root: PyValue): TensorEntry[] {
  const entries: TensorEntry[] = [];
  walkPlaces(root, listTensor, entries);
  return entries;
}

function listTensor(
  entries: TensorEntry[],
  value: PyValue,
  parent: TreePath,
  segment: PathSegment | undefined,
): undefined {
  if (value instanceof Tensor) entries.push(new ListedTensor(value, parent, segment));
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
