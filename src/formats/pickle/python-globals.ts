import { UnsafeCheckpointError } from "../../errors.js";
import { badArguments, pyTypeName } from "./handler-args.js";
import { checkHashable } from "./hashable.js";
import { markByteArray, markFrozenSet } from "./markers.js";
import { NUMPY_HANDLERS } from "./numpy.js";
import type { CallContext, GlobalHandler } from "./types.js";
import { PyComplex, type PyDict, PyGlobal, type PyValue } from "./values.js";

/**
 * The builtin allowlist: the few Python globals a pickle of plain data calls, re-implemented in
 * TypeScript on inert values (sets, bytearrays, OrderedDicts, protocol 2's bytes, numpy arrays).
 * Python 2 files name `__builtin__`; both spellings are listed.
 */

/** `copyreg._reconstructor(cls, object, None)`: protocol 0/1's object.__new__(cls). */
export const RECONSTRUCTORS: ReadonlySet<string> = new Set([
  "copyreg._reconstructor",
  "copy_reg._reconstructor",
]);

/** `copyreg.__newobj__(cls, *args)`: cls.__new__(cls, *args), NEWOBJ spelled as a call. */
export const NEWOBJ_FUNCTIONS: ReadonlySet<string> = new Set([
  "copyreg.__newobj__",
  "copy_reg.__newobj__",
]);

/** `copyreg.__newobj_ex__(cls, args, kwargs)`: NEWOBJ_EX spelled as a call. */
export const NEWOBJ_EX_FUNCTIONS: ReadonlySet<string> = new Set(["copyreg.__newobj_ex__"]);

/** `object` as the base class argument of copyreg._reconstructor. */
export const OBJECT_CLASSES: ReadonlySet<string> = new Set([
  "builtins.object",
  "__builtin__.object",
]);

/** Types a defaultdict may name as its default factory (Python calls it; loadout never does). */
const SAFE_FACTORIES: ReadonlySet<string> = new Set([
  ...[
    "list",
    "dict",
    "set",
    "frozenset",
    "int",
    "float",
    "str",
    "bytes",
    "bytearray",
    "tuple",
  ].flatMap((name) => [`builtins.${name}`, `__builtin__.${name}`]),
  "builtins.bool",
  "builtins.complex",
  "collections.OrderedDict",
  "collections.defaultdict",
  "collections.Counter",
]);

/** The items of a list, tuple or set argument. */
function iterableItems(value: PyValue | undefined, context: CallContext): Iterable<PyValue> {
  if (Array.isArray(value) || value instanceof Set) return value;
  throw badArguments(context, `expected a list, tuple or set, got ${pyTypeName(value)}`);
}

function setOf(args: readonly PyValue[], context: CallContext): Set<PyValue> {
  if (args.length > 1) throw badArguments(context, "expected at most one iterable");
  const set = new Set<PyValue>();
  if (args.length === 0) return set;
  for (const item of iterableItems(args[0], context)) {
    checkHashable(item, "set member");
    set.add(item);
  }
  return set;
}

/** Bytes from `bytes(...)` / `bytearray(...)` arguments: (), (bytes), (ints), or (str, encoding). */
function bytesOf(args: readonly PyValue[], context: CallContext): Uint8Array {
  const [source, encoding] = args;
  if (args.length === 0) return new Uint8Array(0);
  if (args.length === 1 && source instanceof Uint8Array) return source.slice();
  if (args.length === 1 && Array.isArray(source)) {
    const bytes = new Uint8Array(source.length);
    for (const [i, item] of source.entries()) {
      if (typeof item !== "number" || !Number.isInteger(item) || item < 0 || item > 255) {
        throw badArguments(context, "byte values must be ints in range(0, 256)");
      }
      bytes[i] = item;
    }
    return bytes;
  }
  if (args.length === 2 && typeof source === "string" && typeof encoding === "string") {
    return encodeText(source, encoding, context);
  }
  throw badArguments(context, "expected (), (bytes), (list of ints) or (str, encoding)");
}

const LATIN1 = new Set(["latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"]);
const UTF8 = new Set(["utf-8", "utf8"]);

/** `str.encode(encoding)` for Latin-1 and UTF-8 (strict, as CPython's default). */
function encodeText(text: string, encoding: string, context: CallContext): Uint8Array {
  const normalized = encoding.toLowerCase().replaceAll("_", "-");
  if (LATIN1.has(normalized)) {
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0xff)
        throw badArguments(context, `character U+${code.toString(16)} is not Latin-1`);
      bytes[i] = code;
    }
    return bytes;
  }
  if (UTF8.has(normalized)) {
    if (hasLoneSurrogate(text)) {
      throw badArguments(context, "a lone surrogate cannot be UTF-8 encoded");
    }
    return new TextEncoder().encode(text);
  }
  throw badArguments(context, `unsupported encoding '${encoding}' (latin1 or utf-8 only)`);
}

function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return true;
    i++;
  }
  return false;
}

/** Python number arguments of complex(). */
function toFloat(value: PyValue | undefined, context: CallContext): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  throw badArguments(context, `expected a number, got ${pyTypeName(value)}`);
}

/** A dict from `OrderedDict(pairs)` / `Counter(mapping)` arguments. */
function dictOf(source: PyValue | undefined, context: CallContext): PyDict {
  const dict: PyDict = new Map();
  if (source === undefined) return dict;
  if (source instanceof Map) {
    for (const [key, value] of source) dict.set(key, value);
    return dict;
  }
  for (const pair of iterableItems(source, context)) {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw badArguments(context, "expected a list of (key, value) pairs");
    }
    checkHashable(pair[0]!, "dict key");
    dict.set(pair[0]!, pair[1]!);
  }
  return dict;
}

const set: GlobalHandler = { call: (args, context) => setOf(args, context) };
const frozenset: GlobalHandler = { call: (args, context) => markFrozenSet(setOf(args, context)) };
const bytes: GlobalHandler = { call: (args, context) => bytesOf(args, context) };
const bytearray: GlobalHandler = {
  call: (args, context) => markByteArray(bytesOf(args, context)),
};
const complex: GlobalHandler = {
  call(args, context) {
    if (args.length > 2) throw badArguments(context, "expected (real, imag)");
    return new PyComplex(
      args.length > 0 ? toFloat(args[0], context) : 0,
      args.length > 1 ? toFloat(args[1], context) : 0,
    );
  },
};

const orderedDict: GlobalHandler = {
  call(args, context) {
    if (args.length > 1) throw badArguments(context, "expected () or (list of pairs)");
    return dictOf(args[0], context);
  },
};

const counter: GlobalHandler = {
  call(args, context) {
    if (args.length > 1 || (args.length === 1 && !(args[0] instanceof Map))) {
      throw badArguments(context, "expected () or (dict)");
    }
    return dictOf(args[0], context);
  },
};

const defaultdict: GlobalHandler = {
  call(args, context) {
    if (args.length > 2) throw badArguments(context, "expected (default_factory[, mapping])");
    const factory = args[0] ?? null;
    if (factory !== null) {
      if (!(factory instanceof PyGlobal)) {
        throw badArguments(context, `default factory must be a type, got ${pyTypeName(factory)}`);
      }
      if (!SAFE_FACTORIES.has(factory.qualifiedName)) {
        throw new UnsafeCheckpointError(
          "UNSAFE_CALL",
          `defaultdict with default factory ${factory.qualifiedName}, which Python would call`,
          {
            file: context.file,
            global: factory.qualifiedName,
            hint: "Only builtin container and number types are accepted as factories.",
          },
        );
      }
    }
    return dictOf(args[1], context);
  },
};

/** `_codecs.encode(str, 'latin1')`: how protocols 0-2 pickle Python 3 bytes. */
const codecsEncode: GlobalHandler = {
  call(args, context) {
    const [text, encoding = "utf-8"] = args;
    if (
      args.length < 1 ||
      args.length > 2 ||
      typeof text !== "string" ||
      typeof encoding !== "string"
    ) {
      throw badArguments(context, "expected (str, encoding)");
    }
    return encodeText(text, encoding, context);
  },
};

const HANDLERS: ReadonlyMap<string, GlobalHandler> = new Map([
  ...Object.entries({ set, frozenset, bytes, bytearray, complex }).flatMap(
    ([name, handler]): [string, GlobalHandler][] => [
      [`builtins.${name}`, handler],
      [`__builtin__.${name}`, handler],
    ],
  ),
  ["collections.OrderedDict", orderedDict],
  ["collections.defaultdict", defaultdict],
  ["collections.Counter", counter],
  ["_codecs.encode", codecsEncode],
  ...NUMPY_HANDLERS,
]);

/** The builtin handler for `module.name`, if loadout has one. */
export function builtinHandler(module: string, name: string): GlobalHandler | undefined {
  return HANDLERS.get(`${module}.${name}`);
}
