import { LoadoutError, PickleError, type UnsafeCheckpointError } from "../../errors.js";
import { latin1Text } from "../latin1.js";
import { CallPolicy } from "./calls.js";
import { python3Name } from "./compat.js";
import { refuseDeniedGlobal } from "./deny.js";
import { pyTypeName } from "./handler-args.js";
import { checkHashable } from "./hashable.js";
import { limitExceeded, resolveLimits } from "./limits.js";
import { isFrozenSet, markByteArray, markFrozenSet } from "./markers.js";
import { Memo } from "./memo.js";
import { findMemoReads } from "./memo-reads.js";
import { HIGHEST_PROTOCOL, Op, opcodeName } from "./opcodes.js";
import { PickleReader } from "./reader.js";
import { MachineShortcutRun } from "./shortcut-run.js";
import {
  decodeRawUnicodeEscape,
  decodeStringEscapes,
  decodeUtf8,
  parseFloatLiteral,
} from "./text.js";
import type {
  CallShortcut,
  PersistentLoader,
  PickleLimits,
  UnpickleOptions,
  UnpickleResult,
} from "./types.js";
import { isTuple, makeTuple, OpaqueObject, type PyDict, PyGlobal, type PyValue } from "./values.js";

export { DEFAULT_LIMITS } from "./limits.js";
export { isByteArray, isFrozenSet, pyAttributes } from "./markers.js";
export { NumpyArray, NumpyDtype, NumpyScalar } from "./numpy.js";

/**
 * The restricted unpickler: CPython 3.11's pickle machine (protocols 0-5) over bytes in memory,
 * without recursion, with every length checked before use and every resource limited. It never
 * imports or calls anything: globals are inert PyGlobal references, and calls go through the
 * CallPolicy (TypeScript handlers, inert opaque objects, or a refusal).
 */
export function unpickle(
  bytes: Uint8Array,
  options: UnpickleOptions = {},
  start = 0,
): UnpickleResult {
  const machine = new PickleMachine(bytes, options, start);
  try {
    return machine.run();
  } finally {
    machine.release();
    kept.lastMachine = machine;
  }
}

/**
 * The last machine to finish, emptied (see release), kept. V8's optimized code for the opcode handlers
 * refers weakly to the machine it was compiled against and to the reader, memo and call policy
 * it reached through it; once a full garbage collection finds them dead, it throws that code
 * away (trace-deopt: "weak objects"), and the next unpickle ran its handlers unoptimized and
 * recompiled them: a 20,000-tensor checkpoint opened right after a full collection took about
 * 1.6 times as long as one opened right after another. Keeping the last machine (holding
 * nothing of its pickle) keeps that code.
 */
const kept: { lastMachine: PickleMachine | undefined } = { lastMachine: undefined };

const EMPTY_TUPLE = makeTuple([]) as PyValue;
const NO_BYTES = new Uint8Array(0);

/** A tuple as a stack value (values.ts types tuples as readonly arrays, outside PyValue). */
function tuple(items: PyValue[]): PyValue {
  return makeTuple(items) as PyValue;
}

/**
 * The machine's state and the helpers its opcode handlers share. The handlers (OPCODES, below)
 * are plain functions of the machine, so what they use is not private; nothing outside this
 * module sees the class.
 */
class PickleMachine {
  readonly reader: PickleReader;
  private readonly limits: PickleLimits;
  readonly policy: CallPolicy;
  private readonly opaqueClasses = new Set<string>();
  protocol = 0;
  private operations = 0;
  /** Set by STOP. */
  private stopped = false;

  readonly stack: PyValue[] = [];
  /** Stack heights at each open MARK. */
  readonly marks: number[] = [];
  /** Height of the innermost MARK (0 without one): values below it are out of reach. */
  base = 0;
  readonly memo: Memo;
  /**
   * options.shortcut and options.persistentLoad, held by the machine: the options are the
   * caller's object, made afresh for each checkpoint, and optimized code that reached these
   * through it was thrown away whenever a new object's fields disagreed with the last one's.
   */
  private shortcut: CallShortcut | undefined;
  private loader: PersistentLoader | undefined;
  /** With a shortcut: the global it takes calls of, once the pickle has named it. */
  private shortcutGlobal: PyGlobal | undefined = undefined;
  private readonly shortcutRun: MachineShortcutRun;

  constructor(
    public bytes: Uint8Array,
    options: UnpickleOptions,
    start: number,
  ) {
    this.limits = resolveLimits(options.limits);
    this.reader = new PickleReader(
      bytes,
      start,
      options.file,
      options.baseOffset ?? 0,
      this.limits,
    );
    this.policy = new CallPolicy(options, this.opaqueClasses);
    this.shortcut = options.shortcut;
    this.loader = options.persistentLoad;
    this.memo = new Memo(findMemoReads(bytes, start));
    this.shortcutRun = new MachineShortcutRun(bytes, this.memo, this.limits.maxStringBytes);
  }

  run(): UnpickleResult {
    try {
      const value = this.execute();
      return { value, end: this.reader.pos, opaqueClasses: this.opaqueClasses };
    } catch (error) {
      throw this.located(error);
    }
  }

  /**
   * Drops every reference to the pickle, its values and the caller's options, so that a machine
   * kept after its run (lastMachine) holds nothing: only its own small objects stay.
   */
  release(): void {
    this.stack.length = 0;
    this.marks.length = 0;
    this.base = 0;
    this.bytes = NO_BYTES;
    this.reader.release(NO_BYTES);
    this.memo.clear();
    this.policy.release();
    this.shortcut = undefined;
    this.loader = undefined;
    this.shortcutGlobal = undefined;
    this.shortcutRun.bytes = NO_BYTES;
  }

  // ---------------------------------------------------------------- errors

  /** Errors from helpers and handlers get this opcode's location; anything else becomes a PickleError. */
  private located(error: unknown): LoadoutError {
    const where = this.reader.where();
    if (error instanceof LoadoutError) {
      if (error.offset !== undefined) return error;
      const Kind = error.constructor as new (
        code: string,
        what: string,
        details: object,
      ) => LoadoutError;
      return new Kind(error.code, error.what, {
        file: error.file ?? where.file,
        key: error.key,
        offset: where.offset,
        hint: error.hint,
        cause: error.cause,
        global: (error as UnsafeCheckpointError).global,
      });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new PickleError("UNEXPECTED", `unpickling failed: ${message}`, {
      ...where,
      cause: error,
    });
  }

  // ---------------------------------------------------------------- stack

  pop(): PyValue {
    if (this.stack.length <= this.base) throw this.underflow();
    return this.stack.pop()!;
  }

  top(): PyValue {
    if (this.stack.length <= this.base) throw this.underflow();
    return this.stack[this.stack.length - 1]!;
  }

  underflow(): PickleError {
    const op = opcodeName(this.bytes[this.reader.opStart]!);
    return this.marks.length > 0 && this.stack.length === this.base
      ? this.reader.fail("STACK_UNDERFLOW", `${op} needs a value but finds a MARK`)
      : this.reader.fail("STACK_UNDERFLOW", `${op} needs a value but the stack is empty`);
  }

  mark(): void {
    if (this.marks.length >= this.limits.maxMarkDepth) {
      throw limitExceeded(
        "maxMarkDepth",
        "nesting of MARKs",
        this.limits.maxMarkDepth,
        this.reader.where(),
      );
    }
    this.marks.push(this.stack.length);
    this.base = this.stack.length;
  }

  /** Removes the innermost MARK and returns the values above it. */
  popMark(): PyValue[] {
    if (this.marks.length === 0) throw this.markMissing();
    // An exactly sized copy, then pops: splice builds its result generically, and setting
    // `length` is a call into the runtime.
    const items = this.stack.slice(this.base);
    this.discard(items.length);
    this.dropMark();
    this.checkItems(items.length);
    return items;
  }

  /** Forgets the innermost MARK: the values above the one below it are the current ones. */
  private dropMark(): void {
    this.marks.pop();
    this.base = this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
  }

  /** Pops `count` values (pops rather than setting `length`, a call into the runtime). */
  private discard(count: number): void {
    const stack = this.stack;
    for (let i = count; i > 0; i--) stack.pop();
  }

  markMissing(): PickleError {
    return this.reader.fail(
      "MARK_MISSING",
      `${opcodeName(this.bytes[this.reader.opStart]!)} needs a MARK but there is none`,
    );
  }

  /**
   * SETITEMS: the values above the innermost MARK, set pairwise into the dict below it, read in
   * place rather than copied out (a state dict's SETITEMS carries a thousand tensors), then popped.
   */
  setItemsAboveMark(): void {
    if (this.marks.length === 0) throw this.markMissing();
    const stack = this.stack;
    const from = this.base;
    const count = stack.length - from;
    this.checkItems(count);
    this.dropMark();
    if (from <= this.base) {
      // No dict below the MARK: the error top() gives once the items are gone.
      this.discard(count);
      this.top();
    }
    this.setPairs(stack[from - 1]!, stack, from);
    this.discard(count);
  }

  checkItems(count: number): void {
    if (count > this.limits.maxContainerItems) {
      throw limitExceeded(
        "maxContainerItems",
        `a container of ${count} items`,
        this.limits.maxContainerItems,
        this.reader.where(),
      );
    }
  }

  // ---------------------------------------------------------------- memo

  memoPut(index: number, value: PyValue): void {
    // The memo keeps only the values the pickle reads (when known), so the rest can die young.
    this.memo.set(index, value);
    if (this.memo.size > this.limits.maxMemo) {
      throw limitExceeded(
        "maxMemo",
        `a memo of ${this.memo.size} entries`,
        this.limits.maxMemo,
        this.reader.where(),
      );
    }
  }

  /** BINGET / LONG_BINGET: a call of the shortcut's global may be taken by the shortcut. */
  pushMemo(index: number): void {
    const value = this.memoGet(index);
    if (value === this.shortcutGlobal && this.takeShortcut()) return;
    this.push(value);
  }

  /**
   * Offers the opcodes after this BINGET to the shortcut. It pushes what the call would
   * have pushed, provided the limits the machine checks as it goes hold over the whole run;
   * otherwise (or when the shortcut declines) the machine runs those opcodes itself.
   */
  private takeShortcut(): boolean {
    const run = this.shortcutRun;
    const { reader, limits, memo } = this;
    run.begin(reader.pos, reader.readLimit);
    const value = this.shortcut!.take(run);
    if (
      value === undefined ||
      this.operations + run.operations > limits.maxOperations ||
      this.stack.length + run.stackDepth > limits.maxStack ||
      this.marks.length + run.markDepth > limits.maxMarkDepth ||
      run.containerItems > limits.maxContainerItems ||
      memo.size + run.putCount > limits.maxMemo
    ) {
      return false;
    }
    // Entries nobody reads: the memo counts them and keeps no value.
    for (let i = 0; i < run.putCount; i++) memo.set(run.puts[i]!, null);
    this.operations += run.operations;
    reader.skipTo(run.end);
    this.push(value);
    return true;
  }

  memoGet(index: number): PyValue {
    const value = this.memo.get(index);
    if (value === undefined) {
      throw this.reader.fail(
        "MEMO_MISSING",
        `memo index ${index} was never stored`,
        "The file is corrupt or crafted.",
      );
    }
    return value;
  }

  // ---------------------------------------------------------------- containers

  /** The list APPEND(S) extends by `adding` items: a list, or an opaque object's listItems. */
  listOf(target: PyValue, adding: number): PyValue[] {
    let list: PyValue[];
    if (Array.isArray(target) && !isTuple(target)) list = target;
    else if (target instanceof OpaqueObject) {
      target.listItems ??= [];
      list = target.listItems;
    } else {
      throw this.reader.fail(
        "BAD_OPERAND",
        `APPEND to a ${pyTypeName(target)}, which is not a list`,
      );
    }
    this.checkItems(list.length + adding);
    return list;
  }

  appendItems(items: PyValue[]): void {
    const list = this.listOf(this.top(), items.length);
    for (const item of items) list.push(item);
  }

  /** The dict SETITEM(S) fills: a dict, or an opaque object's dictItems. */
  dictOf(target: PyValue): PyDict {
    if (target instanceof Map) return target;
    if (target instanceof OpaqueObject) {
      target.dictItems ??= new Map();
      return target.dictItems;
    }
    throw this.reader.fail(
      "BAD_OPERAND",
      `SETITEM on a ${pyTypeName(target)}, which is not a dict`,
    );
  }

  setItem(dict: PyDict, key: PyValue, value: PyValue): void {
    if (typeof key === "object" && key !== null) checkHashable(key, "dict key");
    dict.set(key, value);
  }

  /** Sets `values[from..]`, key then value, into the dict `target` (SETITEMS and DICT). */
  setPairs(target: PyValue, values: readonly PyValue[], from: number): void {
    if ((values.length - from) % 2 !== 0) {
      throw this.reader.fail("BAD_OPERAND", "SETITEMS with an odd number of values");
    }
    const dict = this.dictOf(target);
    for (let i = from; i < values.length; i += 2) this.setItem(dict, values[i]!, values[i + 1]!);
    this.checkItems(dict.size);
  }

  dictFrom(items: PyValue[]): PyDict {
    const dict: PyDict = new Map();
    this.setPairs(dict, items, 0);
    return dict;
  }

  addItems(set: Set<PyValue>, items: PyValue[]): void {
    for (const item of items) {
      if (typeof item === "object" && item !== null) checkHashable(item, "set member");
      set.add(item);
    }
    this.checkItems(set.size);
  }

  // ---------------------------------------------------------------- globals

  /** GLOBAL / STACK_GLOBAL / INST: a denied name refuses the file; Python 2 names are renamed. */
  findClass(module: string, name: string): PyGlobal {
    refuseDeniedGlobal(module, name, this.reader.where());
    const [module3, name3] = python3Name(module, name);
    if (module3 !== module || name3 !== name) {
      refuseDeniedGlobal(module3, name3, this.reader.where());
    }
    const global = this.protocol < 3 ? new PyGlobal(module3, name3) : new PyGlobal(module, name);
    const shortcut = this.shortcut;
    if (shortcut !== undefined && shortcut.global === global.qualifiedName) {
      this.shortcutGlobal = global;
    }
    return global;
  }

  persistentLoad(pid: PyValue): PyValue {
    const loader = this.loader;
    if (!loader) {
      throw this.reader.fail(
        "NO_PERSISTENT_LOAD",
        "persistent id without a loader",
        "The pickle refers to data stored outside it (a torch storage): open the whole checkpoint, not the bare pickle.",
      );
    }
    return loader.load(pid);
  }

  // ---------------------------------------------------------------- the machine

  /**
   * The main loop: one opcode at a time, each done by its handler in OPCODES. Kept this small on
   * purpose. V8 compiles a loop this size in a fraction of a millisecond, and a handler's
   * compiled code depends only on what that handler touches: when a full garbage collection
   * drops the hidden classes of the previous unpickle's values (tuples, opaque objects), only
   * the small handlers that saw them recompile. With every opcode inlined into one large switch,
   * each open after a collection recompiled the whole loop (20–50 ms of compiler time, several
   * times per checkpoint) and ran unoptimized meanwhile.
   */
  private execute(): PyValue {
    const { stack, limits, reader } = this;
    while (!this.stopped) {
      const op = reader.opcode();
      if (++this.operations > limits.maxOperations) {
        throw limitExceeded(
          "maxOperations",
          "the number of opcodes",
          limits.maxOperations,
          reader.where(),
        );
      }
      OPCODES[op]!(this, op);
      if (stack.length > limits.maxStack) {
        throw limitExceeded(
          "maxStack",
          `a stack of ${stack.length} values`,
          limits.maxStack,
          reader.where(),
        );
      }
    }
    return stack[0]!;
  }

  /** STOP: the one value left on the stack is the result. */
  stop(): void {
    const { stack } = this;
    if (stack.length !== 1 || this.marks.length > 0) {
      throw this.reader.fail(
        "BAD_STOP",
        `STOP with ${stack.length} values and ${this.marks.length} MARKs on the stack (expected exactly one value)`,
      );
    }
    this.stopped = true;
  }

  /** Pushes a value read from the opcode's argument (most handlers are one of these). */
  push(value: PyValue): void {
    this.stack.push(value);
  }
}

/** What one opcode does to the machine; `op` is the opcode byte, for handlers shared by several. */
type OpcodeHandler = (m: PickleMachine, op: number) => void;

/**
 * Every opcode of protocols 0-5 (CPython 3.11), by byte. Torch checkpoints use the first group;
 * the rest are protocol 0 text, frames, sets and the opcodes loadout refuses.
 */
const OPCODES = opcodeTable({
  [Op.STOP]: (m) => m.stop(),
  [Op.MARK]: (m) => m.mark(),
  [Op.NONE]: (m) => m.push(null),
  [Op.NEWTRUE]: (m) => m.push(true),
  [Op.NEWFALSE]: (m) => m.push(false),
  [Op.BININT]: (m) => m.push(m.reader.view.getInt32(m.reader.take(4), true)),
  [Op.BININT1]: (m) => m.push(m.bytes[m.reader.take(1)]!),
  [Op.BININT2]: (m) => m.push(m.reader.view.getUint16(m.reader.take(2), true)),
  // Big-endian, as struct.pack(">d") writes it.
  [Op.BINFLOAT]: (m) => m.push(m.reader.view.getFloat64(m.reader.take(8), false)),
  [Op.BINUNICODE]: (m) => m.push(m.reader.utf8String(m.reader.uint32())),
  [Op.SHORT_BINUNICODE]: (m) => m.push(m.reader.utf8String(m.bytes[m.reader.take(1)]!)),
  [Op.BINBYTES]: (m) => m.push(m.reader.byteString(m.reader.uint32())),
  [Op.SHORT_BINBYTES]: (m) => m.push(m.reader.byteString(m.bytes[m.reader.take(1)]!)),
  // Python's () is one shared object too.
  [Op.EMPTY_TUPLE]: (m) => m.push(EMPTY_TUPLE),
  [Op.EMPTY_LIST]: (m) => m.push([]),
  [Op.EMPTY_DICT]: (m) => m.push(new Map()),
  [Op.TUPLE]: (m) => m.push(tuple(m.popMark())),
  [Op.TUPLE1]: (m) => m.push(tuple([m.pop()])),
  [Op.TUPLE2]: (m) => {
    const second = m.pop();
    m.push(tuple([m.pop(), second]));
  },
  [Op.TUPLE3]: (m) => {
    const third = m.pop();
    const second = m.pop();
    m.push(tuple([m.pop(), second, third]));
  },
  [Op.APPEND]: (m) => {
    const value = m.pop();
    m.listOf(m.top(), 1).push(value);
  },
  [Op.APPENDS]: (m) => m.appendItems(m.popMark()),
  [Op.SETITEM]: (m) => {
    const value = m.pop();
    const key = m.pop();
    const dict = m.dictOf(m.top());
    m.setItem(dict, key, value);
    m.checkItems(dict.size);
  },
  // The dict is below the MARK.
  [Op.SETITEMS]: (m) => m.setItemsAboveMark(),
  [Op.BINPUT]: (m) => m.memoPut(m.bytes[m.reader.take(1)]!, m.top()),
  [Op.LONG_BINPUT]: (m) => m.memoPut(m.reader.uint32(), m.top()),
  [Op.MEMOIZE]: (m) => m.memoPut(m.memo.size, m.top()),
  [Op.BINGET]: (m) => m.pushMemo(m.bytes[m.reader.take(1)]!),
  [Op.LONG_BINGET]: (m) => m.pushMemo(m.reader.uint32()),
  [Op.REDUCE]: (m) => {
    const args = m.pop();
    const callable = m.pop();
    m.push(m.policy.call(callable, args, "REDUCE"));
  },
  [Op.NEWOBJ]: (m) => {
    const args = m.pop();
    const cls = m.pop();
    m.push(m.policy.construct(cls, args, new Map(), "NEWOBJ"));
  },
  [Op.BUILD]: (m) => {
    const state = m.pop();
    m.policy.build(m.top(), state);
  },
  [Op.BINPERSID]: (m) => m.push(m.persistentLoad(m.pop())),

  [Op.PROTO]: (m) => {
    const version = m.bytes[m.reader.take(1)]!;
    if (version > HIGHEST_PROTOCOL) {
      throw m.reader.fail("UNSUPPORTED_PROTOCOL", `unsupported pickle protocol ${version}`);
    }
    m.protocol = version;
  },
  [Op.FRAME]: (m) => m.reader.enterFrame(m.reader.uint64()),
  [Op.POP]: (m) => {
    if (m.stack.length > m.base) m.stack.pop();
    else if (m.marks.length > 0) m.popMark();
    else throw m.underflow();
  },
  [Op.POP_MARK]: (m) => {
    m.popMark();
  },
  [Op.DUP]: (m) => m.push(m.top()),

  [Op.INT]: (m) => m.push(m.reader.textInt(false)),
  [Op.LONG]: (m) => m.push(m.reader.textInt(true)),
  [Op.LONG1]: (m) => m.push(m.reader.longBytes(m.bytes[m.reader.take(1)]!)),
  [Op.LONG4]: (m) => {
    const n = m.reader.view.getInt32(m.reader.take(4), true);
    if (n < 0) throw m.reader.fail("BAD_LENGTH", `LONG4 with negative byte count ${n}`);
    m.push(m.reader.longBytes(n));
  },
  [Op.FLOAT]: (m) => m.push(parseFloatLiteral(m.reader.lineText())),
  [Op.BINUNICODE8]: (m) => m.push(m.reader.utf8String(m.reader.uint64())),
  // Raw-unicode-escape text.
  [Op.UNICODE]: (m) => {
    const [start, end] = m.reader.line();
    m.push(decodeRawUnicodeEscape(m.bytes, start, end));
  },
  [Op.BINBYTES8]: (m) => m.push(m.reader.byteString(m.reader.uint64())),
  [Op.BYTEARRAY8]: (m) => m.push(markByteArray(m.reader.byteString(m.reader.uint64()))),
  [Op.BINSTRING]: (m) => {
    const n = m.reader.view.getInt32(m.reader.take(4), true);
    if (n < 0) throw m.reader.fail("BAD_LENGTH", `BINSTRING with negative byte count ${n}`);
    m.push(m.reader.python2String(n));
  },
  [Op.SHORT_BINSTRING]: (m) => m.push(m.reader.python2String(m.bytes[m.reader.take(1)]!)),
  // A quoted Python 2 str literal.
  [Op.STRING]: (m) => {
    const { bytes } = m;
    const [start, end] = m.reader.line();
    const quote = bytes[start];
    if (end - start < 2 || (quote !== 0x22 && quote !== 0x27) || bytes[end - 1] !== quote) {
      throw m.reader.fail("BAD_STRING", "the STRING opcode argument must be quoted");
    }
    const raw = decodeStringEscapes(bytes, start + 1, end - 1);
    m.push(decodeUtf8(raw, 0, raw.length) ?? raw);
  },

  [Op.EMPTY_SET]: (m) => m.push(new Set()),
  [Op.LIST]: (m) => m.push(m.popMark()),
  [Op.DICT]: (m) => m.push(m.dictFrom(m.popMark())),
  [Op.FROZENSET]: (m) => {
    const set = markFrozenSet(new Set());
    m.addItems(set, m.popMark());
    m.push(set);
  },
  [Op.ADDITEMS]: (m) => {
    const items = m.popMark();
    const target = m.top();
    if (!(target instanceof Set) || isFrozenSet(target)) {
      throw m.reader.fail("BAD_OPERAND", `ADDITEMS to a ${pyTypeName(target)}, which is not a set`);
    }
    m.addItems(target, items);
  },

  [Op.PUT]: (m) => m.memoPut(m.reader.memoIndexText(), m.top()),
  [Op.GET]: (m) => m.push(m.memoGet(m.reader.memoIndexText())),
  [Op.GLOBAL]: (m) => {
    const module = m.reader.lineUtf8();
    m.push(m.findClass(module, m.reader.lineUtf8()));
  },
  [Op.STACK_GLOBAL]: (m) => {
    const name = m.pop();
    const module = m.pop();
    if (typeof module !== "string" || typeof name !== "string") {
      throw m.reader.fail(
        "BAD_OPERAND",
        `STACK_GLOBAL needs two str, got ${pyTypeName(module)} and ${pyTypeName(name)}`,
      );
    }
    m.push(m.findClass(module, name));
  },
  // GLOBAL and a call on the values above a MARK.
  [Op.INST]: (m) => {
    const module = m.reader.lineUtf8();
    const cls = m.findClass(module, m.reader.lineUtf8());
    m.push(m.policy.call(cls, tuple(m.popMark()), "INST"));
  },
  // The class is the first value above the MARK.
  [Op.OBJ]: (m) => {
    const items = m.popMark();
    if (items.length === 0) {
      throw m.reader.fail("STACK_UNDERFLOW", "OBJ needs a class after its MARK");
    }
    m.push(m.policy.call(items[0]!, tuple(items.slice(1)), "OBJ"));
  },
  [Op.NEWOBJ_EX]: (m) => {
    const kwargs = m.pop();
    const args = m.pop();
    const cls = m.pop();
    if (!(kwargs instanceof Map)) {
      throw m.reader.fail(
        "BAD_OPERAND",
        `NEWOBJ_EX keyword arguments must be a dict, not ${pyTypeName(kwargs)}`,
      );
    }
    m.push(m.policy.construct(cls, args, kwargs, "NEWOBJ_EX"));
  },
  // An ASCII persistent id.
  [Op.PERSID]: (m) => {
    const { bytes } = m;
    const [start, end] = m.reader.line();
    for (let i = start; i < end; i++) {
      if (bytes[i]! >= 0x80) {
        throw m.reader.fail("BAD_STRING", "PERSID persistent id is not ASCII");
      }
    }
    m.push(m.persistentLoad(latin1Text(bytes, start, end)));
  },
  [Op.EXT1]: refuseExtension,
  [Op.EXT2]: refuseExtension,
  [Op.EXT4]: refuseExtension,
  [Op.NEXT_BUFFER]: refuseOutOfBandBuffer,
  [Op.READONLY_BUFFER]: refuseOutOfBandBuffer,
});

function refuseExtension(m: PickleMachine, op: number): void {
  throw m.reader.fail(
    "EXTENSION_CODE",
    `${opcodeName(op)} refers to the copyreg extension registry, which loadout does not have`,
  );
}

function refuseOutOfBandBuffer(m: PickleMachine, op: number): void {
  throw m.reader.fail(
    "OUT_OF_BAND_BUFFER",
    `${opcodeName(op)} refers to an out-of-band buffer, which loadout does not accept`,
  );
}

function unknownOpcode(m: PickleMachine, op: number): void {
  throw m.reader.fail(
    "UNKNOWN_OPCODE",
    `unknown pickle opcode 0x${op.toString(16).padStart(2, "0")}`,
    "This is not a pickle, or it is corrupt.",
  );
}

/** A 256-entry table, every byte without a handler refused as an unknown opcode. */
function opcodeTable(handlers: Record<number, OpcodeHandler>): readonly OpcodeHandler[] {
  const table = new Array<OpcodeHandler>(256).fill(unknownOpcode);
  for (const [byte, handler] of Object.entries(handlers)) table[Number(byte)] = handler;
  return table;
}

/**
 * V8 forgets a hidden class (object shape) once a full garbage collection finds no object using
 * it, and throws away the optimized code built for it. Each unpickle's machine, reader and memo
 * are garbage by the next one, so every open after a full collection recompiled the main loop
 * (20–50 ms of compiler time, running unoptimized meanwhile). One tiny machine kept for the life
 * of the module keeps their classes alive; it has unpickled `None` and holds nothing else.
 */
const shapeKeeper = new PickleMachine(new Uint8Array([0x80, 0x02, 0x4e, 0x2e]), {}, 0);
shapeKeeper.run();
