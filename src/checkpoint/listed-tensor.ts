import { TENSOR_SHAPE_KEEPERS, type Tensor } from "../tensors/tensor.js";
import type { PathSegment, TensorEntry, TreePath } from "./tree.js";

/**
 * A listed tensor, whose path array is made when first asked for: the container's path is
 * shared by all its tensors, so a listing keeps one small object per tensor, not three.
 */
export class ListedTensor implements TensorEntry {
  /** The container's path until `path` is first read, then the tensor's own. */
  #path: TreePath;
  /** The tensor's segment in its container, until `path` is first read. */
  #segment: PathSegment | undefined;

  constructor(
    readonly tensor: Tensor,
    parent: TreePath,
    segment: PathSegment | undefined,
  ) {
    this.#path = parent;
    this.#segment = segment;
  }

  get path(): TreePath {
    if (this.#segment !== undefined) {
      this.#path = childPath(this.#path, this.#segment);
      this.#segment = undefined;
    }
    return this.#path;
  }

  /** As the plain { path, tensor } it stands for, in JSON and in Node's console. */
  toJSON(): TensorEntry {
    return { path: this.path, tensor: this.tensor };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): TensorEntry {
    return this.toJSON();
  }
}

/**
 * The path one level down, in an array of exactly its length: a spread grows its array as it
 * iterates (a 2-segment path took a 17-slot backing store), and so does a push after a copy.
 * Array literals and `new Array(n)` are allocated at their size.
 */
export function childPath(path: TreePath, segment: PathSegment): TreePath {
  switch (path.length) {
    case 0:
      return [segment];
    case 1:
      return [path[0]!, segment];
    case 2:
      return [path[0]!, path[1]!, segment];
    case 3:
      return [path[0]!, path[1]!, path[2]!, segment];
  }
  const child = new Array<PathSegment>(path.length + 1);
  for (let i = 0; i < path.length; i++) child[i] = path[i]!;
  child[path.length] = segment;
  return child;
}

/**
 * One listed tensor kept for the life of the module, so that its hidden class (and the
 * optimized code that builds listings) outlives a full garbage collection: see SHAPE_KEEPERS in
 * formats/pickle/values.ts.
 */
export const LISTED_TENSOR_SHAPE_KEEPER: TensorEntry = new ListedTensor(
  TENSOR_SHAPE_KEEPERS[0]!,
  [],
  "",
);
