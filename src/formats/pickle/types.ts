import type { PyValue } from "./values.js";

/**
 * The contract between the restricted unpickler and the formats that use it. Nothing in a pickle
 * is ever called: a global resolves to a `GlobalHandler` written in TypeScript, or to an inert
 * reference; calling anything without a handler refuses the file.
 */

/** Resource limits; exceeding one throws a LimitExceededError whose `code` is the limit's name. */
export interface PickleLimits {
  /** Entries in the memo. */
  maxMemo: number;
  /** Values on the stack at once (all marks together). */
  maxStack: number;
  /** MARKs open at once: how deeply containers nest while being built. */
  maxMarkDepth: number;
  /** Items in one list, dict, set or tuple. */
  maxContainerItems: number;
  /** Bytes of one LONG1/LONG4 integer. */
  maxLongBytes: number;
  /** Bytes of one string or bytes object. */
  maxStringBytes: number;
  /** Opcodes executed. */
  maxOperations: number;
}

export interface CallContext {
  /** `module.name` of the global being called, for error messages. */
  readonly global: string;
  /** File being read, for error messages. */
  readonly file: string | undefined;
}

/**
 * What a global may do, in TypeScript, when the pickle calls it. A handler gets only inert values
 * and returns one. Anything the handler does not provide is refused.
 */
export interface GlobalHandler {
  /** REDUCE, INST or OBJ: `global(*args)`. */
  call?(args: readonly PyValue[], context: CallContext): PyValue;
  /** NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`. */
  construct?(args: readonly PyValue[], kwargs: PyValue, context: CallContext): PyValue;
}

/** Values a handler returns may accept BUILD's state by implementing this. */
export interface Buildable {
  setState(state: PyValue, context: CallContext): void;
}

/**
 * Python's `Unpickler.persistent_load`. An object with a method rather than a function: a
 * loader keeps state for one file, and the unpickler's optimized code, which inlines `load`,
 * then depends on the loader's class (which lasts) rather than on one file's closure (which
 * does not, and took that code with it when collected).
 */
export interface PersistentLoader {
  load(pid: PyValue): PyValue;
}

/**
 * A format's fast path for the calls of one global it writes with the same opcodes every time
 * (torch: a `_rebuild_tensor_v2` call of some 30 opcodes per tensor). At each BINGET of that
 * global, the machine offers the shortcut the opcodes that follow. The shortcut either reads
 * them itself and returns exactly the value the machine would have pushed by the end of
 * them, or returns undefined and the machine runs them as usual. It declines rather than
 * throws: anything unusual, wrong or refused is left to the machine, which reports it.
 */
export interface CallShortcut {
  /** `module.name` of the global. */
  readonly global: string;
  take(run: ShortcutRun): PyValue | undefined;
}

/** What a shortcut reads from and tells the machine back (see CallShortcut). */
export interface ShortcutRun {
  readonly bytes: Uint8Array;
  /** The first byte after the BINGET of the global. */
  readonly start: number;
  /** Reads must end at or before this: the end of the current frame or of the bytes. */
  readonly limit: number;
  /** The longest string the machine accepts (PickleLimits.maxStringBytes). */
  readonly maxStringBytes: number;
  /** What a BINGET of `index` would push, or undefined where the machine would refuse it. */
  memoValue(index: number): PyValue | undefined;
  /**
   * Records a PUT of `index`. False when the pickle reads that entry back later: the shortcut
   * then declines, since it does not build the values its PUTs store.
   */
  put(index: number): boolean;
  /** Set by a shortcut that takes the call: the end of the opcodes it read, and their count. */
  end: number;
  operations: number;
  /** Set likewise: the most values on the stack at once, the global's BINGET included. */
  stackDepth: number;
  /** Set likewise: the most MARKs open at once. */
  markDepth: number;
  /** Set likewise: the items of the largest container a MARK closed. */
  containerItems: number;
}

export interface UnpickleOptions {
  /** File name for error messages. */
  file?: string;
  /** Offset of the pickle within `file`, so errors report absolute offsets. */
  baseOffset?: number;
  /**
   * The allowlist: returns the handler for a global, or undefined. Unknown globals become inert
   * `PyGlobal` references; a call of one refuses the file.
   */
  resolveGlobal?: (module: string, name: string) => GlobalHandler | undefined;
  /** BINPERSID / PERSID: turns a persistent id into a value (a torch storage). */
  persistentLoad?: PersistentLoader;
  /** A faster path for the calls of one global that the format writes the same way every time. */
  shortcut?: CallShortcut;
  /** Refuse building instances of unknown classes too (no OpaqueObject at all). */
  strict?: boolean;
  /** `module.name` of globals that may be called as inert calls, yielding OpaqueObjects. */
  allowGlobals?: readonly string[];
  limits?: Partial<PickleLimits>;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode, relative to the start of the bytes given. */
  end: number;
  /** `module.Class` of every opaque object built, for reporting. */
  opaqueClasses: ReadonlySet<string>;
}
