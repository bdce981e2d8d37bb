import { describeValue, formatPath, type TreePath } from "../checkpoint/tree.js";
import { FormatError, LimitExceededError } from "../errors.js";
import {
  isDict,
  isTuple,
  OpaqueObject,
  PyComplex,
  PyGlobal,
  type PyValue,
} from "../formats/pickle/values.js";
import { canConvert } from "../tensors/convert.js";
import { dtypeInfo } from "../tensors/dtype.js";
import { Tensor } from "../tensors/tensor.js";
import { MAX_PLAIN_NODES, type PlainObject, type PlainValue, setOwn } from "./plain-value.js";

/** Elements of a tensor with more than one element that are copied into plain data at most. */
export const MAX_PLAIN_TENSOR_ELEMENTS = 4096;

/**
 * Python data from a checkpoint tree as plain data (see PlainValue):
 * - dicts become objects with string keys (ints as decimal text, True/False/None as Python
 *   writes them); two keys with the same text are refused rather than one lost;
 * - lists, tuples and sets become arrays;
 * - ints beyond 2^53 (bigints) become decimal strings, so they stay exact;
 * - one-element tensors become numbers (booleans for bool), other small tensors
 *   `{"__tensor__": {dtype, shape, values}}`;
 * - foreign objects become `{"__class__": "module.Class"}`, globals `{"__global__": name}`,
 *   bytes `{"__bytes__": hex}`, complex numbers `{"__complex__": [real, imag]}`.
 * Iterative; a cycle is a FormatError, more than `maxNodes` values a LimitExceededError.
 */
export async function pyToPlain(
  value: PyValue,
  path: TreePath = [],
  maxNodes = MAX_PLAIN_NODES,
): Promise<PlainValue> {
  const root: { value: PlainValue } = { value: null };
  const tensors: { tensor: Tensor; path: LinkedPath; assign: (v: PlainValue) => void }[] = [];
  type Task =
    | { value: PyValue; path: LinkedPath; assign: (v: PlainValue) => void }
    | { leave: object };
  const start: LinkedPath = { parent: undefined, segment: undefined, base: path };
  const stack: Task[] = [{ value, path: start, assign: (v) => (root.value = v) }];
  const open = new Set<object>();
  let nodes = 0;
  for (let task = stack.pop(); task !== undefined; task = stack.pop()) {
    if ("leave" in task) {
      open.delete(task.leave);
      continue;
    }
    const { value: item, path: at, assign } = task;
    if (++nodes > maxNodes) {
      throw new LimitExceededError("maxPlainNodes", `state holds more than ${maxNodes} values`, {
        key: pathText(at),
        hint: "Shared references are copied for each use; this state is too large to convert.",
      });
    }
    if (item instanceof Tensor) {
      tensors.push({ tensor: item, path: at, assign });
      continue;
    }
    const leaf = plainLeaf(item);
    if (leaf !== undefined) {
      assign(leaf);
      continue;
    }
    const container = item as object;
    if (open.has(container)) {
      throw new FormatError("CYCLIC_VALUE", "value contains itself", { key: pathText(at) });
    }
    open.add(container);
    stack.push({ leave: container });
    if (isDict(item)) {
      const object: PlainObject = {};
      const entries = [...item].map(([key, member]) => [keyText(key), member] as const);
      for (const [text] of entries) {
        if (Object.hasOwn(object, text)) {
          throw new FormatError("DUPLICATE_KEY_TEXT", `two keys read as '${text}'`, {
            key: pathText(at),
          });
        }
        setOwn(object, text, null);
      }
      assign(object);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [text, member] = entries[i]!;
        stack.push({
          value: member,
          path: child(at, text),
          assign: (v) => setOwn(object, text, v),
        });
      }
    } else if (Array.isArray(item) || item instanceof Set) {
      const items = [...(item as Iterable<PyValue>)];
      const array: PlainValue[] = new Array(items.length).fill(null);
      assign(array);
      for (let i = items.length - 1; i >= 0; i--) {
        stack.push({ value: items[i]!, path: child(at, i), assign: (v) => (array[i] = v) });
      }
    } else {
      throw new FormatError("UNEXPECTED_VALUE", "value of an unknown kind", {
        key: pathText(at),
      });
    }
  }
  for (const { tensor, path: at, assign } of tensors) assign(await tensorToPlain(tensor, at));
  return root.value;
}

/** A path shared by all its extensions, so descending costs O(1); spelled out only for errors. */
interface LinkedPath {
  parent: LinkedPath | undefined;
  segment: string | number | undefined;
  base?: TreePath;
}

function child(parent: LinkedPath, segment: string | number): LinkedPath {
  return { parent, segment };
}

function pathText(path: LinkedPath): string {
  const segments: (string | number)[] = [];
  let node: LinkedPath | undefined = path;
  for (; node?.parent !== undefined; node = node.parent) segments.push(node.segment!);
  return formatPath([...(node?.base ?? []), ...segments.reverse()]);
}

/** The plain form of a value that holds no other values, or undefined for containers. */
function plainLeaf(value: PyValue): PlainValue | undefined {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return bigintToPlain(value);
  if (value instanceof Uint8Array) return { __bytes__: hex(value) };
  if (value instanceof OpaqueObject) return { __class__: value.pyClass };
  if (value instanceof PyGlobal) return { __global__: value.qualifiedName };
  if (value instanceof PyComplex) return { __complex__: [value.real, value.imag] };
  if (isDict(value) || Array.isArray(value) || isTuple(value) || value instanceof Set) {
    return undefined;
  }
  return { __class__: value.pyClass };
}

function bigintToPlain(value: bigint): number | string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value.toString();
}

/** A dict key as text, as Python's `str()` would write it for scalars. */
function keyText(key: PyValue): string {
  if (typeof key === "string") return key;
  if (typeof key === "number" || typeof key === "bigint") return String(key);
  if (typeof key === "boolean") return key ? "True" : "False";
  if (key === null) return "None";
  // Flat tuples of scalars as Python writes them; anything deeper only described (no recursion).
  if (isTuple(key) && key.every(isScalarKey)) {
    return `(${key.map(keyText).join(", ")}${key.length === 1 ? "," : ""})`;
  }
  if (isTuple(key)) return describeValue(key);
  if (key instanceof Uint8Array) return `b'${hex(key)}'`;
  if (key instanceof PyComplex) return `(${key.real}+${key.imag}j)`;
  if (typeof key === "object" && "pyClass" in key) return `<${key.pyClass}>`;
  return String(key);
}

function isScalarKey(value: PyValue): boolean {
  return value === null || ["string", "number", "bigint", "boolean"].includes(typeof value);
}

function hex(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += b.toString(16).padStart(2, "0");
  return text;
}

async function tensorToPlain(tensor: Tensor, path: LinkedPath): Promise<PlainValue> {
  const { dtype, shape, numel } = tensor;
  if (numel > MAX_PLAIN_TENSOR_ELEMENTS) {
    throw new LimitExceededError(
      "maxPlainTensorElements",
      `tensor of ${numel} elements in a state that should hold scalars`,
      { key: pathText(path), hint: `At most ${MAX_PLAIN_TENSOR_ELEMENTS} elements are copied.` },
    );
  }
  // Complex and float8/float4 elements have no plain number form: only their description.
  if (!canConvert(dtype, "float64")) return { __tensor__: { dtype, shape: [...shape] } };
  const values = await elementsOf(tensor);
  if (shape.length === 0) return values[0]!;
  return { __tensor__: { dtype, shape: [...shape], values } };
}

/** Elements as plain numbers (int64 beyond 2^53 as decimal text, bool as booleans). */
async function elementsOf(tensor: Tensor): Promise<PlainValue[]> {
  const kind = dtypeInfo(tensor.dtype).kind;
  if (tensor.dtype === "int64" || tensor.dtype === "uint64") {
    const array = (await tensor.read()) as BigInt64Array | BigUint64Array;
    return Array.from(array, (v: bigint) => bigintToPlain(v));
  }
  const array = await tensor.read({ dtype: "float64" });
  if (kind === "bool") return Array.from(array as Float64Array, (v) => v !== 0);
  return Array.from(array as Float64Array);
}
