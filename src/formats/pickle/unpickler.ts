import { LoadoutError, PickleError, type UnsafeCheckpointError } from "../../errors.js";
import { type CallPolicy, createCallPolicy } from "./calls.js";
import { python3Name } from "./compat.js";
import { refuseDeniedGlobal } from "./deny.js";
import { pyTypeName } from "./handler-args.js";
import { checkHashable } from "./hashable.js";
import { limitExceeded, resolveLimits } from "./limits.js";
import { isFrozenSet, markByteArray, markFrozenSet } from "./markers.js";
import { Memo } from "./memo.js";
import { HIGHEST_PROTOCOL, opcodeName } from "./opcodes.js";
import { PickleReader } from "./reader.js";
import {
  decodeLatin1,
  decodeRawUnicodeEscape,
  decodeStringEscapes,
  decodeUtf8,
  parseFloatLiteral,
} from "./text.js";
import type { PickleLimits, UnpickleOptions, UnpickleResult } from "./types.js";
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
  return new PickleMachine(bytes, options, start).run();
}

const EMPTY_TUPLE = makeTuple([]) as PyValue;

/** A tuple as a stack value (values.ts types tuples as readonly arrays, outside PyValue). */
function tuple(items: PyValue[]): PyValue {
  return makeTuple(items) as PyValue;
}

class PickleMachine {
  private readonly reader: PickleReader;
  private readonly limits: PickleLimits;
  private readonly policy: CallPolicy;
  private readonly opaqueClasses = new Set<string>();
  private protocol = 0;
  private operations = 0;

  private readonly stack: PyValue[] = [];
  /** Stack heights at each open MARK. */
  private readonly marks: number[] = [];
  /** Height of the innermost MARK (0 without one): values below it are out of reach. */
  private base = 0;
  private readonly memo = new Memo();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
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
    this.policy = createCallPolicy(options, this.opaqueClasses);
  }

  run(): UnpickleResult {
    try {
      const value = this.execute();
      return { value, end: this.reader.pos, opaqueClasses: this.opaqueClasses };
    } catch (error) {
      throw this.located(error);
    }
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

  private pop(): PyValue {
    if (this.stack.length <= this.base) throw this.underflow();
    return this.stack.pop()!;
  }

  private top(): PyValue {
    if (this.stack.length <= this.base) throw this.underflow();
    return this.stack[this.stack.length - 1]!;
  }

  private underflow(): PickleError {
    const op = opcodeName(this.bytes[this.reader.opStart]!);
    return this.marks.length > 0 && this.stack.length === this.base
      ? this.reader.fail("STACK_UNDERFLOW", `${op} needs a value but finds a MARK`)
      : this.reader.fail("STACK_UNDERFLOW", `${op} needs a value but the stack is empty`);
  }

  private mark(): void {
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
  private popMark(): PyValue[] {
    if (this.marks.length === 0) {
      throw this.reader.fail(
        "MARK_MISSING",
        `${opcodeName(this.bytes[this.reader.opStart]!)} needs a MARK but there is none`,
      );
    }
    const items = this.stack.splice(this.base);
    this.marks.pop();
    this.base = this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
    this.checkItems(items.length);
    return items;
  }

  private checkItems(count: number): void {
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

  private memoPut(index: number, value: PyValue): void {
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

  private memoGet(index: number): PyValue {
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
  private listOf(target: PyValue, adding: number): PyValue[] {
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

  private appendItems(items: PyValue[]): void {
    const list = this.listOf(this.top(), items.length);
    for (const item of items) list.push(item);
  }

  /** The dict SETITEM(S) fills: a dict, or an opaque object's dictItems. */
  private dictOf(target: PyValue): PyDict {
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

  private setItem(dict: PyDict, key: PyValue, value: PyValue): void {
    if (typeof key === "object" && key !== null) checkHashable(key, "dict key");
    dict.set(key, value);
  }

  private setItems(target: PyValue, items: PyValue[]): void {
    if (items.length % 2 !== 0) {
      throw this.reader.fail("BAD_OPERAND", "SETITEMS with an odd number of values");
    }
    const dict = this.dictOf(target);
    for (let i = 0; i < items.length; i += 2) this.setItem(dict, items[i]!, items[i + 1]!);
    this.checkItems(dict.size);
  }

  private dictFrom(items: PyValue[]): PyDict {
    const dict: PyDict = new Map();
    this.setItems(dict, items);
    return dict;
  }

  private addItems(set: Set<PyValue>, items: PyValue[]): void {
    for (const item of items) {
      if (typeof item === "object" && item !== null) checkHashable(item, "set member");
      set.add(item);
    }
    this.checkItems(set.size);
  }

  // ---------------------------------------------------------------- globals

  /** GLOBAL / STACK_GLOBAL / INST: a denied name refuses the file; Python 2 names are renamed. */
  private findClass(module: string, name: string): PyGlobal {
    refuseDeniedGlobal(module, name, this.reader.where());
    const [module3, name3] = python3Name(module, name);
    if (module3 !== module || name3 !== name) {
      refuseDeniedGlobal(module3, name3, this.reader.where());
    }
    return this.protocol < 3 ? new PyGlobal(module3, name3) : new PyGlobal(module, name);
  }

  private persistentLoad(pid: PyValue): PyValue {
    const load = this.options.persistentLoad;
    if (!load) {
      throw this.reader.fail(
        "NO_PERSISTENT_LOAD",
        "persistent id without a loader",
        "The pickle refers to data stored outside it (a torch storage): open the whole checkpoint, not the bare pickle.",
      );
    }
    return load(pid);
  }

  // ---------------------------------------------------------------- the machine

  private execute(): PyValue {
    const { bytes, stack, limits } = this;
    for (;;) {
      const op = this.reader.opcode();
      if (++this.operations > limits.maxOperations) {
        throw limitExceeded(
          "maxOperations",
          "the number of opcodes",
          limits.maxOperations,
          this.reader.where(),
        );
      }
      switch (op) {
        case 0x2e: {
          // STOP
          if (stack.length !== 1 || this.marks.length > 0) {
            throw this.reader.fail(
              "BAD_STOP",
              `STOP with ${stack.length} values and ${this.marks.length} MARKs on the stack (expected exactly one value)`,
            );
          }
          return stack[0]!;
        }
        case 0x28: // MARK
          this.mark();
          break;
        case 0x4e: // NONE
          stack.push(null);
          break;
        case 0x88: // NEWTRUE
          stack.push(true);
          break;
        case 0x89: // NEWFALSE
          stack.push(false);
          break;
        case 0x4a: // BININT
          stack.push(this.reader.view.getInt32(this.reader.take(4), true));
          break;
        case 0x4b: // BININT1
          stack.push(bytes[this.reader.take(1)]!);
          break;
        case 0x4d: // BININT2
          stack.push(this.reader.view.getUint16(this.reader.take(2), true));
          break;
        case 0x47: // BINFLOAT (big-endian)
          stack.push(this.reader.view.getFloat64(this.reader.take(8), false));
          break;

        case 0x58: // BINUNICODE
          stack.push(this.reader.utf8String(this.reader.uint32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          stack.push(this.reader.utf8String(bytes[this.reader.take(1)]!));
          break;
        case 0x42: // BINBYTES
          stack.push(this.reader.byteString(this.reader.uint32()));
          break;
        case 0x43: // SHORT_BINBYTES
          stack.push(this.reader.byteString(bytes[this.reader.take(1)]!));
          break;
        case 0x29: // EMPTY_TUPLE: Python's () is one shared object too
          stack.push(EMPTY_TUPLE);
          break;
        case 0x5d: // EMPTY_LIST
          stack.push([]);
          break;
        case 0x7d: // EMPTY_DICT
          stack.push(new Map());
          break;
        case 0x74: // TUPLE
          stack.push(tuple(this.popMark()));
          break;
        case 0x85: // TUPLE1
          stack.push(tuple([this.pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const second = this.pop();
          stack.push(tuple([this.pop(), second]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const third = this.pop();
          const second = this.pop();
          stack.push(tuple([this.pop(), second, third]));
          break;
        }
        case 0x61: {
          // APPEND
          const value = this.pop();
          this.listOf(this.top(), 1).push(value);
          break;
        }
        case 0x65: // APPENDS
          this.appendItems(this.popMark());
          break;
        case 0x73: {
          // SETITEM
          const value = this.pop();
          const key = this.pop();
          const dict = this.dictOf(this.top());
          this.setItem(dict, key, value);
          this.checkItems(dict.size);
          break;
        }
        case 0x75: {
          // SETITEMS: the dict is below the MARK
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x71: // BINPUT
          this.memoPut(bytes[this.reader.take(1)]!, this.top());
          break;
        case 0x72: // LONG_BINPUT
          this.memoPut(this.reader.uint32(), this.top());
          break;
        case 0x94: // MEMOIZE
          this.memoPut(this.memo.size, this.top());
          break;
        case 0x68: // BINGET
          stack.push(this.memoGet(bytes[this.reader.take(1)]!));
          break;
        case 0x6a: // LONG_BINGET
          stack.push(this.memoGet(this.reader.uint32()));
          break;

        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callable = this.pop();
          stack.push(this.policy.call(callable, args, "REDUCE"));
          break;
        }
        case 0x81: {
          // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          stack.push(this.policy.construct(cls, args, new Map(), "NEWOBJ"));
          break;
        }
        case 0x62: {
          // BUILD
          const state = this.pop();
          this.policy.build(this.top(), state);
          break;
        }
        case 0x51: // BINPERSID
          stack.push(this.persistentLoad(this.pop()));
          break;

        default:
          this.rareOpcode(op);
      }
      if (stack.length > limits.maxStack) {
        throw limitExceeded(
          "maxStack",
          `a stack of ${stack.length} values`,
          limits.maxStack,
          this.reader.where(),
        );
      }
    }
  }

  /**
   * Opcodes a torch checkpoint rarely or never uses (protocol 0 text, frames, sets, refusals),
   * kept out of the hot loop so that it stays small enough for the JIT to optimize early.
   */
  private rareOpcode(op: number): void {
    const { bytes, stack } = this;
    switch (op) {
      case 0x80: {
        // PROTO
        const version = bytes[this.reader.take(1)]!;
        if (version > HIGHEST_PROTOCOL) {
          throw this.reader.fail("UNSUPPORTED_PROTOCOL", `unsupported pickle protocol ${version}`);
        }
        this.protocol = version;
        break;
      }
      case 0x95: // FRAME
        this.reader.enterFrame(this.reader.uint64());
        break;
      case 0x30: // POP
        if (stack.length > this.base) stack.pop();
        else if (this.marks.length > 0) this.popMark();
        else throw this.underflow();
        break;
      case 0x31: // POP_MARK
        this.popMark();
        break;
      case 0x32: // DUP
        stack.push(this.top());
        break;

      case 0x49: // INT
        stack.push(this.reader.textInt(false));
        break;
      case 0x4c: // LONG
        stack.push(this.reader.textInt(true));
        break;
      case 0x8a: // LONG1
        stack.push(this.reader.longBytes(bytes[this.reader.take(1)]!));
        break;
      case 0x8b: {
        // LONG4
        const n = this.reader.view.getInt32(this.reader.take(4), true);
        if (n < 0) throw this.reader.fail("BAD_LENGTH", `LONG4 with negative byte count ${n}`);
        stack.push(this.reader.longBytes(n));
        break;
      }
      case 0x46: // FLOAT
        stack.push(parseFloatLiteral(this.reader.lineText()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(this.reader.utf8String(this.reader.uint64()));
        break;
      case 0x56: {
        // UNICODE (raw-unicode-escape)
        const [start, end] = this.reader.line();
        stack.push(decodeRawUnicodeEscape(bytes, start, end));
        break;
      }
      case 0x8e: // BINBYTES8
        stack.push(this.reader.byteString(this.reader.uint64()));
        break;
      case 0x96: // BYTEARRAY8
        stack.push(markByteArray(this.reader.byteString(this.reader.uint64())));
        break;
      case 0x54: {
        // BINSTRING
        const n = this.reader.view.getInt32(this.reader.take(4), true);
        if (n < 0) throw this.reader.fail("BAD_LENGTH", `BINSTRING with negative byte count ${n}`);
        stack.push(this.reader.python2String(n));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(this.reader.python2String(bytes[this.reader.take(1)]!));
        break;
      case 0x53: {
        // STRING: a quoted Python 2 str literal
        const [start, end] = this.reader.line();
        const quote = bytes[start];
        if (end - start < 2 || (quote !== 0x22 && quote !== 0x27) || bytes[end - 1] !== quote) {
          throw this.reader.fail("BAD_STRING", "the STRING opcode argument must be quoted");
        }
        const raw = decodeStringEscapes(bytes, start + 1, end - 1);
        stack.push(decodeUtf8(raw, 0, raw.length) ?? raw);
        break;
      }

      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x6c: // LIST
        stack.push(this.popMark());
        break;
      case 0x64: // DICT
        stack.push(this.dictFrom(this.popMark()));
        break;
      case 0x91: {
        // FROZENSET
        const set = markFrozenSet(new Set());
        this.addItems(set, this.popMark());
        stack.push(set);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = this.popMark();
        const target = this.top();
        if (!(target instanceof Set) || isFrozenSet(target)) {
          throw this.reader.fail(
            "BAD_OPERAND",
            `ADDITEMS to a ${pyTypeName(target)}, which is not a set`,
          );
        }
        this.addItems(target, items);
        break;
      }

      case 0x70: // PUT
        this.memoPut(this.reader.memoIndexText(), this.top());
        break;
      case 0x67: // GET
        stack.push(this.memoGet(this.reader.memoIndexText()));
        break;
      case 0x63: {
        // GLOBAL
        const module = this.reader.lineUtf8();
        stack.push(this.findClass(module, this.reader.lineUtf8()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw this.reader.fail(
            "BAD_OPERAND",
            `STACK_GLOBAL needs two str, got ${pyTypeName(module)} and ${pyTypeName(name)}`,
          );
        }
        stack.push(this.findClass(module, name));
        break;
      }
      case 0x69: {
        // INST: GLOBAL and a call on the values above a MARK
        const module = this.reader.lineUtf8();
        const cls = this.findClass(module, this.reader.lineUtf8());
        stack.push(this.policy.call(cls, tuple(this.popMark()), "INST"));
        break;
      }
      case 0x6f: {
        // OBJ: the class is the first value above the MARK
        const items = this.popMark();
        if (items.length === 0) {
          throw this.reader.fail("STACK_UNDERFLOW", "OBJ needs a class after its MARK");
        }
        stack.push(this.policy.call(items[0]!, tuple(items.slice(1)), "OBJ"));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = this.pop();
        const args = this.pop();
        const cls = this.pop();
        if (!(kwargs instanceof Map)) {
          throw this.reader.fail(
            "BAD_OPERAND",
            `NEWOBJ_EX keyword arguments must be a dict, not ${pyTypeName(kwargs)}`,
          );
        }
        stack.push(this.policy.construct(cls, args, kwargs, "NEWOBJ_EX"));
        break;
      }
      case 0x50: {
        // PERSID: an ASCII persistent id
        const [start, end] = this.reader.line();
        for (let i = start; i < end; i++) {
          if (bytes[i]! >= 0x80) {
            throw this.reader.fail("BAD_STRING", "PERSID persistent id is not ASCII");
          }
        }
        stack.push(this.persistentLoad(decodeLatin1(bytes, start, end)));
        break;
      }
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
        throw this.reader.fail(
          "EXTENSION_CODE",
          `${opcodeName(op)} refers to the copyreg extension registry, which loadout does not have`,
        );
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        throw this.reader.fail(
          "OUT_OF_BAND_BUFFER",
          `${opcodeName(op)} refers to an out-of-band buffer, which loadout does not accept`,
        );
      default:
        throw this.reader.fail(
          "UNKNOWN_OPCODE",
          `unknown pickle opcode 0x${op.toString(16).padStart(2, "0")}`,
          "This is not a pickle, or it is corrupt.",
        );
    }
  }
}
