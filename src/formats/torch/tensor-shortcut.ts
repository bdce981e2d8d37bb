import { internPrefix, internShape, isPrefix } from "../../tensors/shape.js";
import { Tensor } from "../../tensors/tensor.js";
import { DECIMAL_INDEX_LIMIT, decimalIndexIn } from "../decimal-index.js";
import { asciiText, isAscii } from "../latin1.js";
import { Op } from "../pickle/opcodes.js";
import type { CallShortcut, ShortcutRun } from "../pickle/types.js";
import { PyGlobal, type PyValue } from "../pickle/values.js";
import type { TorchStorage } from "./storage.js";

/** The bytes of a count's argument after its opcode (BININT1, BININT2, BININT); 0 for others. */
const COUNT_BYTES = (() => {
  const table = new Uint8Array(256);
  table[Op.BININT1] = 1;
  table[Op.BININT2] = 2;
  table[Op.BININT] = 4;
  return table;
})();

/** The opcode that makes a tuple of 1, 2 or 3 values from the top of the stack. */
const SMALL_TUPLE = [-1, Op.TUPLE1, Op.TUPLE2, Op.TUPLE3];

/** Where the shortcut gets a storage from: the file's persistent_load, given the id's parts. */
export interface StorageFinder {
  /** undefined wherever persistent_load would refuse the id. */
  /** `key` is the id's key, or the number it spells when it is one written as str(n) does. */
  storageFor(storageType: PyGlobal, key: string | number, numel: number): TorchStorage | undefined;
}

/**
 * torch.save writes every tensor with the same 30 or so opcodes (pickle protocol 2):
 *
 *     BINGET _rebuild_tensor_v2  MARK
 *       MARK  'storage' storage_class key location numel  TUPLE  BINPERSID
 *       storage_offset  (size...)  (stride...)  requires_grad
 *       OrderedDict ()  REDUCE
 *     TUPLE  REDUCE
 *
 * with a PUT after nearly every value. Run opcode by opcode, a 20,000-tensor checkpoint spent
 * most of its opening time here: dispatching 600,000 opcodes and building tuples, argument lists
 * and empty hook dicts that die at once. This shortcut reads exactly that sequence and builds the
 * tensor `_rebuild_tensor_v2` would have, with the same storage from the same loader. Anything
 * else (metadata, another opcode, a PUT the pickle reads back, a storage the loader refuses,
 * a view outside its storage) declines, and the unpickler runs the opcodes and reports any error.
 */
export class RebuildTensorShortcut implements CallShortcut {
  readonly global = "torch._utils._rebuild_tensor_v2";
  // What the readers below leave behind: each takes the position of its opcode and returns the
  // position after it, or -1 when the bytes there are not what the template has.
  private value: PyValue = null;
  private number = 0;
  /** Opcodes read so far in this call. */
  private operations = 0;
  /** Sizes read by sizes(): the first `rank`; `marked` when written as MARK ... TUPLE. */
  // Made at a length no torch tensor's rank reaches, so that no write grows it (a growing write
  // in optimized code is thrown away the first time a tensor of a higher rank comes).
  private readonly buffer: number[] = new Array<number>(16).fill(0);
  private rank = 0;
  /** The last shape and strides built: a model's tensors come in runs of one shape. */
  private lastShape = internShape([]);
  private lastStrides = this.lastShape;
  private marked = false;

  constructor(private readonly storages: StorageFinder) {}

  /**
   * Reads the template with its position in a local variable. The machine's stack depth, MARKs
   * and container sizes over these opcodes follow from the template and the ranks of the size
   * and stride tuples, so they are worked out rather than counted opcode by opcode.
   */
  take(run: ShortcutRun): PyValue | undefined {
    this.operations = 0;
    let at = this.opcode(run, run.start, Op.MARK);
    at = this.opcode(run, at, Op.MARK);

    // The persistent id ('storage', storage_class, key, location, numel), then BINPERSID.
    // Each value read is copied out of `value` before it is checked (a check of `this.value`
    // itself would narrow its type past the next read).
    at = this.get(run, at);
    const tag = this.value;
    if (tag !== "storage") return undefined;
    at = this.get(run, at);
    const storageType = this.value;
    if (!(storageType instanceof PyGlobal)) return undefined;
    at = this.put(run, this.storageKey(run, at));
    const key = this.value === null ? this.number : this.value;
    at = this.get(run, at);
    const location = this.value;
    if (typeof location !== "string" || (typeof key !== "string" && typeof key !== "number")) {
      return undefined;
    }
    at = this.count(run, at);
    const numel = this.number;
    at = this.opcode(run, this.put(run, this.opcode(run, at, Op.TUPLE)), Op.BINPERSID);

    // storage_offset, size, stride, requires_grad.
    at = this.count(run, at);
    const storageOffset = this.number;
    at = this.sizes(run, at);
    if (at < 0) return undefined;
    const shape = this.sizesReusing(this.lastShape);
    this.lastShape = shape;
    const shapeRank = this.rank;
    const shapeMarked = this.marked;
    at = this.sizes(run, at);
    if (at < 0) return undefined;
    const strides = this.sizesReusing(this.lastStrides);
    this.lastStrides = strides;
    const requiresGrad = at >= 0 && run.bytes[at] === Op.NEWTRUE;
    at = this.opcode(run, at, requiresGrad ? Op.NEWTRUE : Op.NEWFALSE);

    // backward_hooks: OrderedDict(), which _rebuild_tensor_v2 drops.
    at = this.get(run, at);
    const hooks = this.value;
    if (
      !(hooks instanceof PyGlobal) ||
      hooks.module !== "collections" ||
      hooks.name !== "OrderedDict"
    ) {
      return undefined;
    }
    at = this.put(run, this.opcode(run, this.opcode(run, at, Op.EMPTY_TUPLE), Op.REDUCE));
    // Six arguments: no metadata (a seventh, which may ask for conj/neg, is left to the rebuild).
    at = this.opcode(run, this.put(run, this.opcode(run, at, Op.TUPLE)), Op.REDUCE);
    if (at < 0) return undefined;

    const storage = this.storages.storageFor(storageType, key, numel);
    if (storage === undefined) return undefined;
    let tensor: Tensor;
    try {
      tensor = new Tensor({
        storage,
        dtype: storage.dtype,
        shape,
        strides,
        storageOffset,
        requiresGrad,
      });
    } catch {
      // A view outside its storage: the rebuild call throws it, located in the pickle.
      return undefined;
    }
    run.end = at;
    run.operations = this.operations;
    // Values on the stack, the global first: 8 at OrderedDict's (), or more while a size or
    // stride tuple is built (3 below its first size, 4 below a stride's).
    run.stackDepth = Math.max(8, 3 + shapeRank, 4 + this.rank);
    // Two MARKs: the arguments' and the id's, or the arguments' and a marked tuple's.
    run.markDepth = 2;
    // The persistent id (5 values) and the arguments (6) close MARKs, and marked tuples.
    run.containerItems = Math.max(6, shapeMarked ? shapeRank : 0, this.marked ? this.rank : 0);
    return tensor;
  }

  /** The sizes just read (`buffer[0..rank)`), interned: `last` itself when they equal it. */
  private sizesReusing(last: readonly number[]): readonly number[] {
    return isPrefix(last, this.buffer, this.rank) ? last : internPrefix(this.buffer, this.rank);
  }

  // Each reader passes -1 on, so a chain of them fails as a whole.

  /** The opcode `op`, which has no argument. */
  private opcode(run: ShortcutRun, at: number, op: number): number {
    if (at < 0 || at >= run.limit || run.bytes[at] !== op) return -1;
    this.operations++;
    return at + 1;
  }

  /** BINGET or LONG_BINGET of a value the memo holds, into `value`. */
  private get(run: ShortcutRun, at: number): number {
    if (at < 0) return -1;
    const { bytes } = run;
    const op = bytes[at];
    let index: number;
    let next: number;
    if (op === Op.BINGET && at + 2 <= run.limit) {
      index = bytes[at + 1]!;
      next = at + 2;
    } else if (op === Op.LONG_BINGET && at + 5 <= run.limit) {
      index = uint32(bytes, at + 1);
      next = at + 5;
    } else {
      return -1;
    }
    const value = run.memoValue(index);
    if (value === undefined) return -1;
    this.value = value;
    this.operations++;
    return next;
  }

  /**
   * A BINPUT or LONG_BINPUT, if one comes next (picklers memoize nearly every value): -1 when it
   * cannot be read or the pickle reads that entry back (see ShortcutRun.put). Called only right
   * after a value, so the machine has one to store.
   */
  private put(run: ShortcutRun, at: number): number {
    if (at < 0 || at >= run.limit) return at;
    const { bytes } = run;
    const op = bytes[at];
    if (op === Op.BINPUT) {
      if (at + 2 > run.limit || !run.put(bytes[at + 1]!)) return -1;
      this.operations++;
      return at + 2;
    }
    if (op === Op.LONG_BINPUT) {
      if (at + 5 > run.limit || !run.put(uint32(bytes, at + 1))) return -1;
      this.operations++;
      return at + 5;
    }
    return at;
  }

  /**
   * BININT1, BININT2 or a non-negative BININT, into `number`. One path for all three: a file
   * whose sizes need more bytes than the last file's then runs the same optimized code, where
   * a branch per opcode that the last file never took threw that code away.
   */
  private count(run: ShortcutRun, at: number): number {
    if (at < 0 || at >= run.limit) return -1;
    const { bytes } = run;
    const size = COUNT_BYTES[bytes[at]!]!;
    if (size === 0 || run.limit - at <= size) return -1;
    let value = 0;
    for (let i = size; i > 0; i--) value = value * 256 + bytes[at + i]!;
    // BININT is signed: with its top bit set, it is negative, not a count.
    if (value > 0x7fffffff) return -1;
    this.number = value;
    this.operations++;
    return at + 1 + size;
  }

  /**
   * A storage key: BINUNICODE or SHORT_BINUNICODE holding ASCII text. torch's keys are "0",
   * "1", "2"...: one written as str(n) does goes into `number` (and `value` is null), with no
   * string made; any other into `value`, as a string.
   */
  private storageKey(run: ShortcutRun, at: number): number {
    if (at < 0 || at >= run.limit) return -1;
    const { bytes } = run;
    const header = bytes[at] === Op.BINUNICODE ? 4 : bytes[at] === Op.SHORT_BINUNICODE ? 1 : 0;
    if (header === 0 || at + 1 + header > run.limit) return -1;
    const length = header === 4 ? uint32(bytes, at + 1) : bytes[at + 1]!;
    const start = at + 1 + header;
    if (length > run.maxStringBytes || length > run.limit - start) return -1;
    const number = decimalIndexIn(bytes, start, start + length, DECIMAL_INDEX_LIMIT);
    if (number >= 0) {
      this.number = number;
      this.value = null;
    } else if (isAscii(bytes, start, start + length)) {
      this.value = asciiText(bytes, start, start + length);
    } else {
      return -1;
    }
    this.operations++;
    return start + length;
  }

  /**
   * A tuple of counts and its optional PUT, into `buffer` and `rank`: `()`, counts then
   * TUPLE1/2/3, or MARK counts TUPLE (`marked`).
   */
  private sizes(run: ShortcutRun, at: number): number {
    const buffer = this.buffer;
    let rank = 0;
    let next = this.opcode(run, at, Op.EMPTY_TUPLE);
    this.marked = next < 0 && at >= 0 && run.bytes[at] === Op.MARK;
    if (this.marked) {
      next = this.opcode(run, at, Op.MARK);
      for (let after = this.count(run, next); after >= 0; after = this.count(run, next)) {
        buffer[rank++] = this.number;
        next = after;
      }
      next = this.opcode(run, next, Op.TUPLE);
    } else if (next < 0) {
      next = at;
      for (let after = this.count(run, next); after >= 0 && rank < 3; ) {
        buffer[rank++] = this.number;
        next = after;
        if (rank < 3) after = this.count(run, next);
      }
      next = rank === 0 ? -1 : this.opcode(run, next, SMALL_TUPLE[rank]!);
    }
    this.rank = rank;
    // EMPTY_TUPLE is not memoized by picklers, but a PUT after it is as valid as after any value.
    return this.put(run, next);
  }
}

/** The little-endian unsigned 32-bit integer at `at`. */
function uint32(bytes: Uint8Array, at: number): number {
  return (
    bytes[at]! + bytes[at + 1]! * 0x100 + bytes[at + 2]! * 0x10000 + bytes[at + 3]! * 0x1000000
  );
}
