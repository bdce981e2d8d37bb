import { PickleError, UnsafeCheckpointError } from "../../errors.js";
import { pyTypeName } from "./handler-args.js";
import { addPyAttributes } from "./markers.js";
import {
  builtinHandler,
  NEWOBJ_EX_FUNCTIONS,
  NEWOBJ_FUNCTIONS,
  OBJECT_CLASSES,
  RECONSTRUCTORS,
} from "./python-globals.js";
import type { Buildable, CallContext, GlobalHandler, UnpickleOptions } from "./types.js";
import { isTuple, makeTuple, OpaqueObject, type PyDict, PyGlobal, type PyValue } from "./values.js";

const NO_ARGS = makeTuple([]);

interface Resolved {
  name: string;
  context: CallContext;
  /** The caller's handler, then the builtin one. */
  handlers: (GlobalHandler | undefined)[];
  /** What REDUCE of this global does, worked out once: the pickle machinery, or a handler's call. */
  callKind: "reconstruct" | "newobj" | "newobj_ex" | "handler" | "none";
  /** For callKind "handler": the first handler with a call. */
  callHandler: GlobalHandler | undefined;
}

function isBuildable(value: object): value is Buildable {
  return typeof (value as Partial<Buildable>).setState === "function";
}

/**
 * What REDUCE, INST, OBJ, NEWOBJ and BUILD may do. Nothing in the file is ever called: a global
 * is either handled in TypeScript (the caller's resolveGlobal first, then the builtin
 * allowlist), or becomes an inert OpaqueObject where that is allowed, or the file is refused.
 * A class rather than closures made per unpickle: the machine's optimized code inlines these
 * methods, and code that inlined one unpickle's closures was thrown away once they were collected.
 */
export class CallPolicy {
  private options: UnpickleOptions;
  private readonly file: string | undefined;
  private readonly allowed: Set<string>;
  private resolved = new WeakMap<PyGlobal, Resolved>();
  // The last two globals resolved: a torch pickle alternates between two (the rebuild function
  // and OrderedDict, 20,000 times each), and comparing identities is cheaper than a WeakMap.
  private lastGlobal: PyGlobal | undefined = undefined;
  private lastResolved: Resolved | undefined = undefined;
  private previousGlobal: PyGlobal | undefined = undefined;
  private previousResolved: Resolved | undefined = undefined;

  constructor(
    options: UnpickleOptions,
    private readonly opaqueClasses: Set<string>,
  ) {
    this.options = options;
    this.file = options.file;
    this.allowed = new Set(options.allowGlobals ?? []);
  }

  /** What `global` resolves to, worked out once per global (torch calls one 20,000 times). */
  private resolve(global: PyGlobal): Resolved {
    if (global === this.lastGlobal) return this.lastResolved!;
    if (global === this.previousGlobal) {
      const found = this.previousResolved!;
      this.previousGlobal = this.lastGlobal;
      this.previousResolved = this.lastResolved;
      this.lastGlobal = global;
      this.lastResolved = found;
      return found;
    }
    let found = this.resolved.get(global);
    if (!found) {
      found = this.resolveOnce(global);
      this.resolved.set(global, found);
    }
    this.previousGlobal = this.lastGlobal;
    this.previousResolved = this.lastResolved;
    this.lastGlobal = global;
    this.lastResolved = found;
    return found;
  }

  private resolveOnce(global: PyGlobal): Resolved {
    const name = global.qualifiedName;
    const handlers = [
      this.options.resolveGlobal?.(global.module, global.name),
      builtinHandler(global.module, global.name),
    ];
    const callHandler = handlers.find((handler) => handler?.call !== undefined);
    const callKind = RECONSTRUCTORS.has(name)
      ? "reconstruct"
      : NEWOBJ_FUNCTIONS.has(name)
        ? "newobj"
        : NEWOBJ_EX_FUNCTIONS.has(name)
          ? "newobj_ex"
          : callHandler
            ? "handler"
            : "none";
    return {
      name,
      context: { global: name, file: this.file },
      handlers,
      callKind,
      callHandler,
    };
  }

  private opaque(cls: PyGlobal, args: readonly PyValue[]): OpaqueObject {
    const object = new OpaqueObject(cls.module, cls.name, args);
    this.opaqueClasses.add(object.pyClass);
    return object;
  }

  /** NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`. */
  construct(cls: PyValue, args: PyValue, kwargs: PyDict, opcode: string): PyValue {
    if (!(cls instanceof PyGlobal)) {
      throw new UnsafeCheckpointError(
        "UNSAFE_CALL",
        `${opcode} of a ${pyTypeName(cls)}, which is not a class named by the pickle`,
        { hint: "Only classes named by GLOBAL or STACK_GLOBAL can be instantiated." },
      );
    }
    const tuple = argumentTuple(args, opcode);
    const { handlers, context } = this.resolve(cls);
    for (const handler of handlers) {
      if (handler?.construct) return handler.construct(tuple, kwargs, context);
    }
    if (this.options.strict) {
      throw new UnsafeCheckpointError(
        "OPAQUE_CLASS",
        `pickle builds an instance of ${cls.qualifiedName}, which loadout does not know`,
        {
          global: cls.qualifiedName,
          hint: "Without strict mode it opens as an inert object holding its state.",
        },
      );
    }
    const object = this.opaque(cls, tuple);
    if (kwargs.size > 0) object.kwargs = kwargs;
    return object;
  }

  /** copyreg._reconstructor(cls, object, None) is object.__new__(cls): NEWOBJ by another name. */
  private reconstruct(args: readonly PyValue[], opcode: string): PyValue {
    const [cls, base] = args;
    if (
      args.length !== 3 ||
      !(base instanceof PyGlobal) ||
      !OBJECT_CLASSES.has(base.qualifiedName)
    ) {
      const what = base instanceof PyGlobal ? base.qualifiedName : pyTypeName(base);
      throw new UnsafeCheckpointError(
        "UNSAFE_CALL",
        `copyreg._reconstructor with base ${what}: only object is accepted as the base class`,
        {
          global: "copyreg._reconstructor",
          hint: "Any other base would run that class's constructor on the pickle's data.",
        },
      );
    }
    return this.construct(cls ?? null, NO_ARGS as PyValue, new Map(), opcode);
  }

  /** REDUCE / INST / OBJ: `callable(*args)`. */
  call(callable: PyValue, args: PyValue, opcode: string): PyValue {
    if (!(callable instanceof PyGlobal)) {
      throw new UnsafeCheckpointError(
        "UNSAFE_CALL",
        `${opcode} calls a ${pyTypeName(callable)}, which is not a global named by the pickle`,
        { hint: "Calling the result of another call is how exploits chain: refused." },
      );
    }
    const tuple = argumentTuple(args, opcode);
    const found = this.resolve(callable);
    const name = found.name;
    switch (found.callKind) {
      case "handler":
        return found.callHandler!.call!(tuple, found.context);
      case "reconstruct":
        return this.reconstruct(tuple, opcode);
      case "newobj":
        return this.construct(
          tuple[0] ?? null,
          makeTuple(tuple.slice(1)) as PyValue,
          new Map(),
          opcode,
        );
      case "newobj_ex": {
        const [cls = null, args = null, kwargs] = tuple;
        if (tuple.length !== 3 || !(kwargs instanceof Map)) {
          throw new PickleError("BAD_OPERAND", `${name} needs (cls, args, kwargs)`);
        }
        return this.construct(cls, args, kwargs, opcode);
      }
      case "none":
        break;
    }
    if (this.allowed.has(name)) return this.opaque(callable, tuple);
    throw new UnsafeCheckpointError(
      "UNSAFE_CALL",
      `pickle calls ${name}, which is not on the allowlist`,
      {
        global: name,
        hint: `If you trust this file and ${name} is harmless, allow it with allowGlobals: ['${name}'] (CLI: --allow-global ${name}); it then opens as an inert object.`,
      },
    );
  }

  /** BUILD: give `target` the state `state`. */
  build(target: PyValue, state: PyValue): void {
    if (target instanceof PyGlobal) {
      throw new UnsafeCheckpointError(
        "UNSAFE_BUILD",
        `BUILD on ${target.qualifiedName} would modify a class or module`,
        {
          global: target.qualifiedName,
          hint: "Python pickles never do this: the file is crafted.",
        },
      );
    }
    if (target instanceof OpaqueObject) {
      target.state = state;
      return;
    }
    // Tuples are immutable and () is shared, so they take no attributes (nor does Python).
    if (typeof target !== "object" || target === null || isTuple(target)) {
      throw new PickleError("BAD_OPERAND", `BUILD on a ${pyTypeName(target)}, which has no state`);
    }
    if (isBuildable(target)) {
      const name =
        target instanceof Object && "pyClass" in target ? String(target.pyClass) : "object";
      target.setState(state, { global: name, file: this.file });
      return;
    }
    // Python's default __setstate__: a dict of attributes, or a (dict, slots dict) pair.
    const parts = isTuple(state) && state.length === 2 ? state : [state];
    for (const part of parts) {
      if (part === null) continue;
      if (!(part instanceof Map)) {
        throw new PickleError(
          "BAD_OPERAND",
          `BUILD state for a ${pyTypeName(target)} must be a dict, not ${pyTypeName(part)}`,
        );
      }
      addPyAttributes(target, part);
    }
  }

  /** Drops the options and everything resolved, once the unpickle is over. */
  release(): void {
    this.options = {};
    this.allowed.clear();
    this.resolved = new WeakMap();
    this.lastGlobal = undefined;
    this.lastResolved = undefined;
    this.previousGlobal = undefined;
    this.previousResolved = undefined;
  }
}

function argumentTuple(args: PyValue, opcode: string): readonly PyValue[] {
  if (!isTuple(args)) {
    throw new PickleError(
      "BAD_OPERAND",
      `${opcode} arguments must be a tuple, not ${pyTypeName(args)}`,
    );
  }
  return args;
}
