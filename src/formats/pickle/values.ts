/**
 * What an unpickled value is in loadout: plain JavaScript data. Python's dict is a Map (order and
 * non-string keys kept), list an array, tuple a frozen array, int a number (or a BigInt beyond
 * 2^53), bytes a Uint8Array. Everything else is an inert object that records what it was.
 */

/** Objects that stand for Python objects: tensors, opaque instances, globals, complex numbers. */
export interface PyObjectLike {
  /** `module.Class` of the Python object this stands for. */
  readonly pyClass: string;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyValue, PyValue>
  | Set<PyValue>
  | PyObjectLike;

export type PyDict = Map<PyValue, PyValue>;

/** A tuple: an array that cannot change, as a Python tuple cannot. */
export function makeTuple(items: PyValue[]): readonly PyValue[] {
  return Object.freeze(items);
}

export function isTuple(value: unknown): value is readonly PyValue[] {
  return Array.isArray(value) && Object.isFrozen(value);
}

export function isDict(value: unknown): value is PyDict {
  return value instanceof Map;
}

/** A reference to a Python global (a class or function) that was named but never called. */
export class PyGlobal implements PyObjectLike {
  readonly pyClass = "global";
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * An instance of a class loadout does not know (an omegaconf config, a framework's own object),
 * built without running any of its code: the class name, the constructor arguments, the state
 * BUILD would have given it, and any items SETITEMS/APPENDS added.
 */
export class OpaqueObject implements PyObjectLike {
  state: PyValue | undefined = undefined;
  /** NEWOBJ_EX's keyword arguments, when there were any. */
  kwargs: PyDict | undefined = undefined;
  dictItems: PyDict | undefined = undefined;
  listItems: PyValue[] | undefined = undefined;
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: readonly PyValue[],
  ) {}
  get pyClass(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Python's complex number. */
export class PyComplex implements PyObjectLike {
  readonly pyClass = "builtins.complex";
  constructor(
    readonly real: number,
    readonly imag: number,
  ) {}
}

/**
 * V8 forgets a hidden class once a full garbage collection finds no object using it (the
 * transitions that lead to it are weak), and throws away the optimized code and inline caches
 * built for it. After a checkpoint is closed and collected, the next open would run its hot
 * loops unoptimized and recompile them. One value of each kind the unpickler builds, kept for
 * the life of the module, keeps those classes: a global, an opaque object, and frozen arrays
 * (tuples) of each element kind (small integers; floats; anything).
 */
export const SHAPE_KEEPERS: readonly unknown[] = [
  new PyGlobal("", ""),
  new OpaqueObject("", "", makeTuple([])),
  makeTuple([0]),
  makeTuple([0.5]),
  makeTuple([null]),
];
