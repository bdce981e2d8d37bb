import { formatPath, type PathSegment, type TreePath } from "../../checkpoint/tree.js";
import { WriteError } from "../../errors.js";
import { latin1Text } from "../../formats/latin1.js";
import { ByteBuilder } from "./byte-builder.js";
import { encodeUtf8SurrogatePass } from "./python-text.js";
import { PyCounter, PyFloat, PyOrderedDict, type WritableValue } from "./python-values.js";

export {
  PyFloat,
  PyOrderedDict,
  pyFloat,
  pyOrderedDict,
  pyTuple,
  type WritableValue,
} from "./python-values.js";

/**
 * A pickler for protocol 2, the protocol torch.save uses, writing the opcodes CPython's C pickler
 * (`_pickle`, what torch uses) writes for the same objects, memo included: every string, tuple,
 * list, dict, global and reduced object is memoized with BINPUT as it is first written and
 * fetched with BINGET when met again. Strings are memoized by value (Python memoizes by identity;
 * the result unpickles the same). Lists and dicts are batched as `_pickle` batches them (1,000
 * items per MARK ... APPENDS / SETITEMS; one item alone with APPEND / SETITEM).
 *
 * Iterative: an explicit stack of tasks, so nesting depth costs heap, not call stack. A value met
 * again while it is still being written (a cycle) is refused: Python could write it, but
 * nothing loadout writes needs one and a reader would have to rebuild it.
 */

/** A Python global (class or function) named in the pickle: `module.name`. */
export class PyGlobalName {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}

/**
 * An object written as `func(*args)` (REDUCE), then, when given, filled with `dictItems` by
 * SETITEM(S), as pickle writes an object whose `__reduce__` returns dict items (OrderedDict).
 */
export class PickleReduction {
  constructor(
    readonly func: PyGlobalName,
    readonly args: readonly PickleItem[],
    readonly dictItems?: ReadonlyMap<PickleItem, PickleItem>,
  ) {}
}

/** A persistent id (BINPERSID): how torch refers to a storage written outside the pickle. */
export class PersistentId {
  constructor(readonly pid: readonly PickleItem[]) {}
}

export type PickleItem = WritableValue | PyGlobalName | PickleReduction | PersistentId;

export interface PicklerHooks {
  /**
   * Called once for each distinct object that is not a Python value by itself (a tensor, to
   * torch's writer; a plain object), with where it was first met; returns how to write it, or
   * undefined to let a plain object be written as a dict and refuse anything else. The result is
   * memoized under the object, so later references are BINGETs.
   */
  reduce?(value: object, path: () => TreePath): PickleReduction | undefined;
}

const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  LONG4: 0x8b,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  MARK: 0x28,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BINPERSID: 0x51,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
} as const;

const encoder = new TextEncoder();

/** Items per MARK ... APPENDS / SETITEMS batch (pickle's _BATCHSIZE). */
const BATCH_SIZE = 1000;

const CODECS_ENCODE = new PyGlobalName("_codecs", "encode");
const ORDERED_DICT = new PyGlobalName("collections", "OrderedDict");
const COUNTER = new PyGlobalName("collections", "Counter");
// Protocol 2 names builtins as Python 2 did (pickle's fix_imports).
const BUILTIN_SET = new PyGlobalName("__builtin__", "set");

interface PathNode {
  parent: PathNode | undefined;
  segment: PathSegment;
}

type Task =
  | { kind: "value"; value: unknown; at: PathNode | undefined }
  | { kind: "op"; op: number }
  /** Memoize `key` (BINPUT) once it is on the stack. */
  | { kind: "memoize"; key: object }
  /** `key` is written: meeting it again is a reference, not a cycle. */
  | { kind: "leave"; key: object };

function pathOf(node: PathNode | undefined): TreePath {
  const segments: PathSegment[] = [];
  for (let n = node; n; n = n.parent) segments.push(n.segment);
  return segments.reverse();
}

function child(parent: PathNode | undefined, segment: PathSegment): PathNode {
  return { parent, segment };
}

function refuse(code: string, what: string, at: PathNode | undefined, hint?: string): WriteError {
  const path = pathOf(at);
  return new WriteError(code, what, {
    key: path.length > 0 ? formatPath(path) : "<root>",
    hint,
  });
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A dict key as a path segment. */
function keySegment(key: unknown): PathSegment {
  if (typeof key === "string" || typeof key === "number") return key;
  if (typeof key === "bigint" || typeof key === "boolean" || key === null) return String(key);
  if (key instanceof PyFloat) return key.value;
  return Array.isArray(key) ? "<tuple>" : "<bytes>";
}

/** Python dict keys must be hashable: scalars, strings, bytes and tuples of those. */
function checkKey(key: unknown, at: PathNode | undefined): void {
  const pending: unknown[] = [key];
  while (pending.length > 0) {
    const item = pending.pop();
    const type = typeof item;
    if (item === null || type === "boolean" || type === "number" || type === "bigint") continue;
    if (type === "string" || item instanceof PyFloat || item instanceof Uint8Array) continue;
    if (Array.isArray(item) && Object.isFrozen(item)) {
      pending.push(...item);
      continue;
    }
    throw refuse(
      "UNHASHABLE_KEY",
      `a dict key is ${describe(item)}, which Python cannot use as a key`,
      at,
      "Keys must be None, bools, numbers, strings, bytes or tuples (frozen arrays) of those.",
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return "None";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return Object.isFrozen(value) ? "a tuple" : "a list";
  if (value instanceof Map) return "a dict (Map)";
  if (value instanceof Set) return "a set";
  if (typeof value === "object") {
    const name = (value as object).constructor?.name;
    return name ? `a ${name}` : "an object";
  }
  return `a ${typeof value}`;
}

/** Python's `encode_long`: minimal two's complement, little-endian. */
export function encodeLong(value: bigint): Uint8Array {
  if (value === 0n) return new Uint8Array(0);
  const magnitude = value < 0n ? -value : value;
  const nbytes = (magnitude.toString(2).length >> 3) + 1;
  let bits = BigInt.asUintN(nbytes * 8, value);
  const bytes = new Uint8Array(nbytes);
  for (let i = 0; i < nbytes; i++) {
    bytes[i] = Number(bits & 0xffn);
    bits >>= 8n;
  }
  // A negative number whose sign the byte before already carries needs no 0xff byte.
  if (value < 0n && nbytes > 1 && bytes[nbytes - 1] === 0xff && (bytes[nbytes - 2]! & 0x80) !== 0) {
    return bytes.subarray(0, nbytes - 1);
  }
  return bytes;
}

class Pickler {
  private readonly out = new ByteBuilder(1024);
  private readonly stack: Task[] = [];
  private readonly objectMemo = new Map<object, number>();
  private readonly stringMemo = new Map<string, number>();
  private readonly globalMemo = new Map<string, number>();
  private readonly inProgress = new Set<object>();
  private memoSize = 0;

  constructor(private readonly hooks: PicklerHooks) {}

  run(root: unknown): Uint8Array {
    this.out.byte(OP.PROTO).byte(2);
    this.stack.push({ kind: "value", value: root, at: undefined });
    while (this.stack.length > 0) {
      const task = this.stack.pop()!;
      switch (task.kind) {
        case "value":
          this.value(task.value, task.at);
          break;
        case "op":
          this.out.byte(task.op);
          break;
        case "memoize":
          this.put(this.remember(task.key));
          break;
        case "leave":
          this.inProgress.delete(task.key);
          break;
      }
    }
    this.out.byte(OP.STOP);
    return this.out.toBytes();
  }

  /** Pushes tasks to run in the order given. */
  private schedule(tasks: Task[]): void {
    for (let i = tasks.length - 1; i >= 0; i--) this.stack.push(tasks[i]!);
  }

  private remember(key: object): number {
    const index = this.memoSize++;
    this.objectMemo.set(key, index);
    return index;
  }

  private put(index: number): void {
    if (index < 256) this.out.byte(OP.BINPUT).byte(index);
    else this.out.byte(OP.LONG_BINPUT).u32(index);
  }

  private get(index: number): void {
    if (index < 256) this.out.byte(OP.BINGET).byte(index);
    else this.out.byte(OP.LONG_BINGET).u32(index);
  }

  private value(value: unknown, at: PathNode | undefined): void {
    if (value === null) {
      this.out.byte(OP.NONE);
      return;
    }
    switch (typeof value) {
      case "boolean":
        this.out.byte(value ? OP.NEWTRUE : OP.NEWFALSE);
        return;
      case "number":
        if (Number.isSafeInteger(value) && !Object.is(value, -0)) this.int(value);
        else this.float(value);
        return;
      case "bigint":
        this.int(value);
        return;
      case "string":
        this.string(value);
        return;
      case "object":
        this.object(value, at);
        return;
      default:
        throw refuse(
          "UNPICKLABLE_VALUE",
          `cannot write ${describe(value)} to a pickle`,
          at,
          value === undefined ? "Leave the entry out, or use null for None." : undefined,
        );
    }
  }

  private int(value: number | bigint): void {
    const small = typeof value === "bigint" ? Number(value) : value;
    if (typeof value === "number" || (value >= -0x80000000n && value <= 0x7fffffffn)) {
      if (small >= 0 && small <= 0xff) {
        this.out.byte(OP.BININT1).byte(small);
        return;
      }
      if (small >= 0 && small <= 0xffff) {
        this.out.byte(OP.BININT2).u16(small);
        return;
      }
      if (small >= -0x80000000 && small <= 0x7fffffff) {
        this.out.byte(OP.BININT).u32(small);
        return;
      }
    }
    const bytes = encodeLong(BigInt(value));
    if (bytes.byteLength < 256) this.out.byte(OP.LONG1).byte(bytes.byteLength);
    else this.out.byte(OP.LONG4).u32(bytes.byteLength);
    this.out.bytes(bytes);
  }

  private float(value: number): void {
    this.out.byte(OP.BINFLOAT).f64be(value);
  }

  private string(value: string): void {
    const memo = this.stringMemo.get(value);
    if (memo !== undefined) {
      this.get(memo);
      return;
    }
    const bytes = encodeUtf8SurrogatePass(value);
    this.out.byte(OP.BINUNICODE).u32(bytes.byteLength).bytes(bytes);
    const index = this.memoSize++;
    this.stringMemo.set(value, index);
    this.put(index);
  }

  private global(value: PyGlobalName, at: PathNode | undefined): void {
    const key = `${value.module}\n${value.name}`;
    const memo = this.globalMemo.get(key);
    if (memo !== undefined) {
      this.get(memo);
      return;
    }
    // Protocol 2 writes names as ASCII lines.
    if (!/^[\x21-\x7e]+$/.test(value.module) || !/^[\x21-\x7e]+$/.test(value.name)) {
      throw refuse(
        "UNPICKLABLE_VALUE",
        `global name ${JSON.stringify(key)} is not printable ASCII`,
        at,
      );
    }
    this.out.byte(OP.GLOBAL).bytes(encoder.encode(`${key}\n`));
    const index = this.memoSize++;
    this.globalMemo.set(key, index);
    this.put(index);
  }

  private object(value: object, at: PathNode | undefined): void {
    if (value instanceof PyFloat) {
      if (typeof value.value !== "number") {
        throw refuse(
          "UNPICKLABLE_VALUE",
          `pyFloat holds ${describe(value.value)}, not a number`,
          at,
        );
      }
      this.float(value.value);
      return;
    }
    if (value instanceof PyGlobalName) {
      this.global(value, at);
      return;
    }
    if (value instanceof PersistentId) {
      // The id is written, never memoized, each time (as pickle's save_pers does).
      const pid = Object.isFrozen(value.pid) ? value.pid : Object.freeze([...value.pid]);
      this.schedule([
        { kind: "value", value: pid, at },
        { kind: "op", op: OP.BINPERSID },
      ]);
      return;
    }
    // Before the memo: a list or dict is memoized as soon as it starts, so meeting it again
    // while it is being written would otherwise become a reference to itself.
    if (this.inProgress.has(value)) {
      throw refuse(
        "CYCLIC_VALUE",
        `${describe(value)} contains itself`,
        at,
        "loadout writes trees (shared parts are fine, cycles are not).",
      );
    }
    const memo = this.objectMemo.get(value);
    if (memo !== undefined) {
      this.get(memo);
      return;
    }
    if (value instanceof Uint8Array) {
      // Protocol 2 has no bytes opcode; CPython writes _codecs.encode(latin1 text, "latin1").
      // Empty bytes too (CPython writes bytes(), which torch's weights_only loader refuses).
      const args = Object.freeze([latin1Text(value), "latin1"]);
      this.reduce(value, new PickleReduction(CODECS_ENCODE, args), at);
      return;
    }
    if (Array.isArray(value)) {
      if (Object.isFrozen(value)) this.tuple(value, at);
      else this.list(value, at);
      return;
    }
    if (value instanceof Map) {
      this.dict(value, at);
      return;
    }
    if (value instanceof Set) {
      const args = Object.freeze([[...value]]);
      this.reduce(value, new PickleReduction(BUILTIN_SET, args), at);
      return;
    }
    if (value instanceof PyOrderedDict) {
      this.reduce(value, new PickleReduction(ORDERED_DICT, Object.freeze([]), value.items), at);
      return;
    }
    if (value instanceof PyCounter) {
      this.reduce(value, new PickleReduction(COUNTER, Object.freeze([value.counts])), at);
      return;
    }
    if (value instanceof PickleReduction) {
      this.reduce(value, value, at);
      return;
    }
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      throw refuse(
        "UNPICKLABLE_VALUE",
        `cannot write ${describe(value)} to a pickle`,
        at,
        "Give numbers as a tensor (a TensorLike with dtype and shape), or as a list.",
      );
    }
    // Asked before the plain-object case: a tensor may be a plain object with dtype, shape, read().
    const reduction = this.hooks.reduce?.(value, () => pathOf(at));
    if (reduction) {
      this.reduce(value, reduction, at);
      return;
    }
    if (isPlainObject(value)) {
      this.dict(new Map(Object.entries(value)), at, value);
      return;
    }
    throw refuse("UNPICKLABLE_VALUE", `cannot write ${describe(value)} to a pickle`, at);
  }

  /** EMPTY_TUPLE (not memoized), TUPLE1-3, or MARK ... TUPLE, then memoized. */
  private tuple(items: readonly unknown[], at: PathNode | undefined): void {
    if (items.length === 0) {
      this.out.byte(OP.EMPTY_TUPLE);
      return;
    }
    this.inProgress.add(items);
    const tasks: Task[] = [];
    if (items.length > 3) tasks.push({ kind: "op", op: OP.MARK });
    items.forEach((item, i) => {
      tasks.push({ kind: "value", value: item, at: child(at, i) });
    });
    tasks.push({ kind: "op", op: items.length > 3 ? OP.TUPLE : OP.TUPLE1 + items.length - 1 });
    tasks.push({ kind: "memoize", key: items });
    tasks.push({ kind: "leave", key: items });
    this.schedule(tasks);
  }

  private list(items: readonly unknown[], at: PathNode | undefined): void {
    this.out.byte(OP.EMPTY_LIST);
    this.put(this.remember(items));
    this.inProgress.add(items);
    const tasks: Task[] = [];
    if (items.length === 1) {
      tasks.push({ kind: "value", value: items[0], at: child(at, 0) });
      tasks.push({ kind: "op", op: OP.APPEND });
    } else {
      for (let start = 0; start < items.length; start += BATCH_SIZE) {
        tasks.push({ kind: "op", op: OP.MARK });
        const end = Math.min(start + BATCH_SIZE, items.length);
        for (let i = start; i < end; i++) {
          tasks.push({ kind: "value", value: items[i], at: child(at, i) });
        }
        tasks.push({ kind: "op", op: OP.APPENDS });
      }
    }
    tasks.push({ kind: "leave", key: items });
    this.schedule(tasks);
  }

  /** A dict (EMPTY_DICT), batched as `_pickle` batches an exact dict. */
  private dict(
    entries: ReadonlyMap<unknown, unknown>,
    at: PathNode | undefined,
    key: object = entries,
  ): void {
    this.out.byte(OP.EMPTY_DICT);
    this.put(this.remember(key));
    this.inProgress.add(key);
    const pairs = [...entries];
    const tasks: Task[] = [];
    if (pairs.length === 1) {
      this.pushItem(tasks, pairs[0]!, at);
      tasks.push({ kind: "op", op: OP.SETITEM });
    } else if (pairs.length > 1) {
      // _pickle loops while a batch came out full, so a multiple of 1,000 ends with an empty batch.
      let start = 0;
      let batch: number;
      do {
        batch = Math.min(BATCH_SIZE, pairs.length - start);
        tasks.push({ kind: "op", op: OP.MARK });
        for (let i = start; i < start + batch; i++) this.pushItem(tasks, pairs[i]!, at);
        tasks.push({ kind: "op", op: OP.SETITEMS });
        start += batch;
      } while (batch === BATCH_SIZE);
    }
    tasks.push({ kind: "leave", key });
    this.schedule(tasks);
  }

  private pushItem(
    tasks: Task[],
    [key, value]: [unknown, unknown],
    at: PathNode | undefined,
  ): void {
    checkKey(key, at);
    tasks.push({ kind: "value", value: key, at });
    tasks.push({ kind: "value", value, at: child(at, keySegment(key)) });
  }

  /** `func(*args)`, memoized under `key`, then `dictItems` as `_pickle`'s batch_dict adds them. */
  private reduce(key: object, reduction: PickleReduction, at: PathNode | undefined): void {
    if (!(reduction.func instanceof PyGlobalName)) {
      throw refuse("UNPICKLABLE_VALUE", "a reduction's function is not a global", at);
    }
    this.inProgress.add(key);
    const args = Object.isFrozen(reduction.args)
      ? reduction.args
      : Object.freeze([...reduction.args]);
    const tasks: Task[] = [
      { kind: "value", value: reduction.func, at },
      { kind: "value", value: args, at },
      { kind: "op", op: OP.REDUCE },
      { kind: "memoize", key },
    ];
    const pairs = reduction.dictItems ? [...reduction.dictItems] : [];
    let start = 0;
    while (start < pairs.length) {
      const remaining = pairs.length - start;
      if (remaining === 1) {
        this.pushItem(tasks, pairs[start]!, at);
        tasks.push({ kind: "op", op: OP.SETITEM });
        break;
      }
      const batch = Math.min(BATCH_SIZE, remaining);
      tasks.push({ kind: "op", op: OP.MARK });
      for (let i = start; i < start + batch; i++) this.pushItem(tasks, pairs[i]!, at);
      tasks.push({ kind: "op", op: OP.SETITEMS });
      start += batch;
    }
    tasks.push({ kind: "leave", key });
    this.schedule(tasks);
  }
}

/**
 * `value` as a protocol-2 pickle. Throws a WriteError naming the path of the first value it
 * cannot write (functions, symbols, undefined, typed arrays, class instances the hooks do not
 * reduce, cycles, unhashable dict keys).
 */
export function pickle(value: PickleItem, hooks: PicklerHooks = {}): Uint8Array {
  return new Pickler(hooks).run(value);
}
