import { describe, expect, it } from "vitest";
import {
  ConfigError,
  LimitExceededError,
  LoadoutError,
  PickleError,
  UnsafeCheckpointError,
} from "../../src/errors.js";
import { DEFAULT_LIMITS } from "../../src/formats/pickle/limits.js";
import { Op } from "../../src/formats/pickle/opcodes.js";
import type { UnpickleOptions } from "../../src/formats/pickle/types.js";
import { unpickle } from "../../src/formats/pickle/unpickler.js";
import { OpaqueObject } from "../../src/formats/pickle/values.js";
import {
  binget,
  binint,
  binint1,
  binput,
  binunicode,
  bytes,
  frame,
  global,
  type Part,
  proto,
  shortBinunicode,
  stackGlobal,
  u32,
  u64,
} from "./assemble.js";

/** Hand-assembled hostile and malformed pickles: each is refused with the right typed error. */

function failure(data: Uint8Array, options: UnpickleOptions = {}): LoadoutError {
  try {
    unpickle(data, options);
  } catch (error) {
    expect(error).toBeInstanceOf(LoadoutError);
    return error as LoadoutError;
  }
  throw new Error("expected the pickle to be refused");
}

function refused(
  parts: Part[],
  kind: typeof LoadoutError,
  code: string,
  options: UnpickleOptions = {},
): LoadoutError {
  const error = failure(bytes(...parts), options);
  expect(error).toBeInstanceOf(kind);
  expect(error.code).toBe(code);
  return error;
}

const STOP = Op.STOP;

describe("limits", () => {
  it("maxMemo", () => {
    const parts = [proto(4), Op.NONE, Op.MEMOIZE, Op.MEMOIZE, Op.MEMOIZE, STOP];
    expect(unpickle(bytes(...parts), { limits: { maxMemo: 3 } }).value).toBeNull();
    refused(parts, LimitExceededError, "maxMemo", { limits: { maxMemo: 2 } });
  });

  it("maxStack", () => {
    const parts = [Op.MARK, Op.NONE, Op.NONE, Op.NONE, Op.LIST, STOP];
    expect(unpickle(bytes(...parts), { limits: { maxStack: 3 } }).value).toEqual([
      null,
      null,
      null,
    ]);
    refused(parts, LimitExceededError, "maxStack", { limits: { maxStack: 2 } });
  });

  it("maxMarkDepth", () => {
    const parts = [Op.MARK, Op.MARK, Op.MARK, Op.LIST, Op.LIST, Op.LIST, STOP];
    expect(unpickle(bytes(...parts), { limits: { maxMarkDepth: 3 } }).value).toEqual([[[]]]);
    refused(parts, LimitExceededError, "maxMarkDepth", { limits: { maxMarkDepth: 2 } });
  });

  it("maxContainerItems, for every way a container grows", () => {
    const limits = { maxContainerItems: 2 };
    const three = [binint1(1), binint1(2), binint1(3)];
    refused([Op.MARK, three, Op.LIST, STOP], LimitExceededError, "maxContainerItems", { limits });
    refused([Op.MARK, three, Op.TUPLE, STOP], LimitExceededError, "maxContainerItems", { limits });
    refused(
      [proto(4), Op.MARK, three, Op.FROZENSET, STOP],
      LimitExceededError,
      "maxContainerItems",
      {
        limits,
      },
    );
    // Two APPENDS of two: each batch fits, the list does not.
    const appends = [Op.EMPTY_LIST, Op.MARK, binint1(1), binint1(2), Op.APPENDS];
    expect(unpickle(bytes(appends, STOP), { limits }).value).toEqual([1, 2]);
    refused([appends, binint1(3), Op.APPEND, STOP], LimitExceededError, "maxContainerItems", {
      limits,
    });
    const setitems = [
      Op.EMPTY_DICT,
      Op.MARK,
      binint1(1),
      Op.NONE,
      binint1(2),
      Op.NONE,
      Op.SETITEMS,
    ];
    refused(
      [setitems, binint1(3), Op.NONE, Op.SETITEM, STOP],
      LimitExceededError,
      "maxContainerItems",
      {
        limits,
      },
    );
    const additems = [proto(4), Op.EMPTY_SET, Op.MARK, three, Op.ADDITEMS, STOP];
    refused(additems, LimitExceededError, "maxContainerItems", { limits });
  });

  it("maxLongBytes, checked before the bytes are read", () => {
    const nine = [Op.LONG1, 9, new Uint8Array(9), STOP];
    refused(nine, LimitExceededError, "maxLongBytes", { limits: { maxLongBytes: 8 } });
    // LONG4 claiming 2 GiB: refused by the limit, not read, not allocated.
    refused([proto(2), Op.LONG4, u32(0x7fffffff), STOP], LimitExceededError, "maxLongBytes");
    // Protocol 0 text: CPython refuses decimal literals over 4,300 digits, and so does loadout.
    refused([Op.LONG, "9".repeat(4301), "L\n", STOP], PickleError, "BAD_LITERAL");
    expect(unpickle(bytes(Op.LONG, "9".repeat(4300), "L\n", STOP)).value).toBe(10n ** 4300n - 1n);
  });

  it("maxStringBytes", () => {
    refused([binunicode("123456"), STOP], LimitExceededError, "maxStringBytes", {
      limits: { maxStringBytes: 5 },
    });
    refused([Op.STRING, "'123456'\n", STOP], LimitExceededError, "maxStringBytes", {
      limits: { maxStringBytes: 5 },
    });
  });

  it("maxOperations", () => {
    const parts = [Op.NONE, Op.POP, Op.NONE, Op.POP, Op.NONE, STOP];
    expect(unpickle(bytes(...parts), { limits: { maxOperations: 6 } }).value).toBeNull();
    refused(parts, LimitExceededError, "maxOperations", { limits: { maxOperations: 5 } });
  });

  it("rejects limits that are not non-negative integers", () => {
    refused([Op.NONE, STOP], ConfigError, "BAD_LIMIT", { limits: { maxMemo: -1 } });
    refused([Op.NONE, STOP], ConfigError, "BAD_LIMIT", { limits: { maxStack: 1.5 } });
  });

  it("has defaults for every limit", () => {
    for (const value of Object.values(DEFAULT_LIMITS))
      expect(Number.isSafeInteger(value)).toBe(true);
    // Never above V8's longest string, so decoding cannot fail on length.
    expect(DEFAULT_LIMITS.maxStringBytes).toBeLessThan(2 ** 29 - 24);
  });
});

describe("huge length prefixes are refused before any allocation", () => {
  const cases: [string, Part[], typeof LoadoutError, string][] = [
    ["BINUNICODE 4 GiB", [Op.BINUNICODE, u32(0xffffffff)], LimitExceededError, "maxStringBytes"],
    ["BINUNICODE8 2^63", [Op.BINUNICODE8, u64(2n ** 63n)], LimitExceededError, "maxStringBytes"],
    ["BINBYTES8 2^64-1", [Op.BINBYTES8, u64(2n ** 64n - 1n)], LimitExceededError, "maxStringBytes"],
    ["BYTEARRAY8 2^62", [Op.BYTEARRAY8, u64(2n ** 62n)], LimitExceededError, "maxStringBytes"],
    ["BINBYTES 1000 of 3", [Op.BINBYTES, u32(1000), "abc"], PickleError, "TRUNCATED"],
    ["BINSTRING negative", [Op.BINSTRING, u32(0xffffffff)], PickleError, "BAD_LENGTH"],
    ["LONG4 negative", [Op.LONG4, u32(0x80000000)], PickleError, "BAD_LENGTH"],
    ["FRAME 2^63", [proto(4), frame(2n ** 63n), Op.NONE, STOP], PickleError, "TRUNCATED"],
  ];
  for (const [name, parts, kind, code] of cases) {
    it(name, () => {
      refused([proto(4), ...parts], kind, code);
    });
  }
});

describe("denied globals are refused even when never called", () => {
  const modules = [
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "socket",
    "shutil",
    "importlib",
    "runpy",
    "pickle",
    "_pickle",
    "marshal",
    "types",
    "code",
    "codeop",
    "ctypes",
    "webbrowser",
    "pty",
    "platform",
    "asyncio",
    "multiprocessing",
    "threading",
    "signal",
    "pdb",
    "bdb",
    "timeit",
    "profile",
    "cProfile",
    "trace",
    "urllib",
    "http",
    "ftplib",
    "smtplib",
    "telnetlib",
    "tempfile",
    "glob",
    "io",
    "_io",
    "logging",
    "operator",
    "functools",
    "inspect",
    "linecache",
    "zipimport",
    "pkgutil",
    "site",
    "sysconfig",
    "distutils",
    "setuptools",
    "pip",
    "_posixsubprocess",
  ];
  for (const module of modules) {
    it(module, () => {
      // GLOBAL then STOP: the global is only named.
      const error = refused(
        [global(module, "anything"), STOP],
        UnsafeCheckpointError,
        "UNSAFE_GLOBAL",
      );
      expect((error as UnsafeCheckpointError).global).toBe(`${module}.anything`);
      expect(error.message).toContain(`${module}.anything`);
      refused(
        [proto(4), stackGlobal(`${module}.sub`, "x"), STOP],
        UnsafeCheckpointError,
        "UNSAFE_GLOBAL",
      );
    });
  }

  it("submodules, dotted attribute paths and dunders", () => {
    for (const [module, name] of [
      ["os.path", "join"],
      ["urllib.request", "urlopen"],
      ["http.client", "HTTPSConnection"],
      ["builtins", "eval.__call__"],
      ["collections", "os.system"],
      ["torch.serialization", "sys.modules"],
      ["numpy", "__builtins__"],
      ["mypackage", "Model.__init__.__globals__"],
    ] as const) {
      refused([proto(4), stackGlobal(module, name), STOP], UnsafeCheckpointError, "UNSAFE_GLOBAL");
    }
  });

  it("builtins outside the allowlist, under both spellings", () => {
    for (const name of [
      "eval",
      "exec",
      "getattr",
      "setattr",
      "open",
      "compile",
      "__import__",
      "globals",
      "apply",
      "breakpoint",
      "type",
      "print",
    ]) {
      refused([global("builtins", name), STOP], UnsafeCheckpointError, "UNSAFE_GLOBAL");
      refused([global("__builtin__", name), STOP], UnsafeCheckpointError, "UNSAFE_GLOBAL");
    }
  });

  it("Python 2 names of denied modules (renamed as CPython renames them)", () => {
    for (const [module, name] of [
      ["commands", "getoutput"],
      ["cPickle", "loads"],
      ["urllib2", "urlopen"],
      ["httplib", "HTTPConnection"],
      ["__builtin__", "reduce"],
    ] as const) {
      refused([proto(2), global(module, name), STOP], UnsafeCheckpointError, "UNSAFE_GLOBAL");
    }
  });

  it("lets data types and unknown classes be named", () => {
    for (const [module, name] of [
      ["builtins", "set"],
      ["collections", "OrderedDict"],
      ["torch._utils", "_rebuild_tensor_v2"],
      ["omegaconf.dictconfig", "DictConfig"],
    ] as const) {
      const value = unpickle(bytes(global(module, name), STOP)).value;
      expect(value).toMatchObject({ module, name });
    }
  });
});

describe("Python 2 names", () => {
  it("are renamed as CPython renames them under protocols 0-2, and kept from protocol 3", () => {
    expect(unpickle(bytes(global("__builtin__", "object"), STOP)).value).toMatchObject({
      module: "builtins",
      name: "object",
    });
    expect(
      unpickle(bytes(proto(2), global("copy_reg", "_reconstructor"), STOP)).value,
    ).toMatchObject({
      module: "copyreg",
      name: "_reconstructor",
    });
    expect(
      unpickle(bytes(proto(2), global("UserDict", "IterableUserDict"), STOP)).value,
    ).toMatchObject({
      module: "collections",
      name: "UserDict",
    });
    expect(unpickle(bytes(proto(3), global("UserDict", "UserDict"), STOP)).value).toMatchObject({
      module: "UserDict",
      name: "UserDict",
    });
  });
});

describe("calls", () => {
  it("REDUCE of an unknown global: UNSAFE_CALL naming it, at the REDUCE's offset, with a hint", () => {
    const parts = [proto(2), global("mylib.tools", "run"), Op.EMPTY_TUPLE, Op.REDUCE, STOP];
    const error = refused(parts, UnsafeCheckpointError, "UNSAFE_CALL", {
      file: "model.pt",
      baseOffset: 1000,
    }) as UnsafeCheckpointError;
    expect(error.global).toBe("mylib.tools.run");
    expect(error.file).toBe("model.pt");
    expect(error.offset).toBe(1000 + 20);
    expect(error.hint).toContain("allowGlobals");
    expect(error.hint).toContain("--allow-global mylib.tools.run");
  });

  it("calling something that is not a global", () => {
    // A list called as a function.
    refused([Op.EMPTY_LIST, Op.EMPTY_TUPLE, Op.REDUCE, STOP], UnsafeCheckpointError, "UNSAFE_CALL");
    // The result of an allowed call, called again.
    const chained = [
      global("builtins", "set"),
      Op.EMPTY_TUPLE,
      Op.REDUCE,
      Op.EMPTY_TUPLE,
      Op.REDUCE,
      STOP,
    ];
    refused(chained, UnsafeCheckpointError, "UNSAFE_CALL");
  });

  it("REDUCE whose arguments are not a tuple", () => {
    refused(
      [global("builtins", "set"), Op.EMPTY_LIST, Op.REDUCE, STOP],
      PickleError,
      "BAD_OPERAND",
    );
  });

  it("INST and OBJ are calls", () => {
    refused(
      [Op.MARK, binint1(1), Op.INST, "mylib\nThing\n", STOP],
      UnsafeCheckpointError,
      "UNSAFE_CALL",
    );
    refused(
      [Op.MARK, global("mylib", "Thing"), Op.OBJ, STOP],
      UnsafeCheckpointError,
      "UNSAFE_CALL",
    );
    refused([Op.MARK, Op.OBJ, STOP], PickleError, "STACK_UNDERFLOW");
    refused([Op.MARK, Op.INST, "os\nsystem\n", STOP], UnsafeCheckpointError, "UNSAFE_GLOBAL");
  });

  it("NEWOBJ of an unknown class: opaque, or OPAQUE_CLASS under strict", () => {
    const parts = [
      proto(2),
      global("omegaconf.dictconfig", "DictConfig"),
      Op.EMPTY_TUPLE,
      Op.NEWOBJ,
      STOP,
    ];
    const result = unpickle(bytes(...parts));
    expect(result.value).toBeInstanceOf(OpaqueObject);
    expect([...result.opaqueClasses]).toEqual(["omegaconf.dictconfig.DictConfig"]);
    const error = refused(parts, UnsafeCheckpointError, "OPAQUE_CLASS", { strict: true });
    expect((error as UnsafeCheckpointError).global).toBe("omegaconf.dictconfig.DictConfig");
    // NEWOBJ_EX too, and of a non-class.
    const ex = [
      proto(4),
      stackGlobal("mylib", "Thing"),
      Op.EMPTY_TUPLE,
      Op.EMPTY_DICT,
      Op.NEWOBJ_EX,
      STOP,
    ];
    refused(ex, UnsafeCheckpointError, "OPAQUE_CLASS", { strict: true });
    refused([Op.EMPTY_LIST, Op.EMPTY_TUPLE, Op.NEWOBJ, STOP], UnsafeCheckpointError, "UNSAFE_CALL");
    const badKwargs = [
      proto(4),
      stackGlobal("mylib", "Thing"),
      Op.EMPTY_TUPLE,
      Op.EMPTY_LIST,
      Op.NEWOBJ_EX,
      STOP,
    ];
    refused(badKwargs, PickleError, "BAD_OPERAND");
  });

  it("copyreg._reconstructor: object base is NEWOBJ, any other base is refused", () => {
    const reconstruct = (base: Part) => [
      global("copy_reg", "_reconstructor"),
      Op.MARK,
      global("mylib", "Thing"),
      base,
      Op.NONE,
      Op.TUPLE,
      Op.REDUCE,
      STOP,
    ];
    const value = unpickle(bytes(reconstruct(global("__builtin__", "object")))).value;
    expect(value).toBeInstanceOf(OpaqueObject);
    expect((value as OpaqueObject).pyClass).toBe("mylib.Thing");
    refused(reconstruct(global("__builtin__", "object")), UnsafeCheckpointError, "OPAQUE_CLASS", {
      strict: true,
    });
    refused(reconstruct(global("__builtin__", "dict")), UnsafeCheckpointError, "UNSAFE_CALL");
    refused(reconstruct(global("mylib", "Base")), UnsafeCheckpointError, "UNSAFE_CALL");
  });

  it("copyreg.__newobj__ / __newobj_ex__ called by REDUCE are NEWOBJ / NEWOBJ_EX", () => {
    const newobj = [
      global("copyreg", "__newobj__"),
      global("mylib", "Thing"),
      binint1(4),
      Op.TUPLE2,
      Op.REDUCE,
      STOP,
    ];
    const value = unpickle(bytes(proto(2), newobj)).value as OpaqueObject;
    expect(value.pyClass).toBe("mylib.Thing");
    expect(value.args).toEqual([4]);
    refused([proto(2), newobj], UnsafeCheckpointError, "OPAQUE_CLASS", { strict: true });
    const ex = [
      global("copyreg", "__newobj_ex__"),
      global("mylib", "Thing"),
      Op.EMPTY_TUPLE,
      Op.EMPTY_DICT,
      shortBinunicode("k"),
      binint1(1),
      Op.SETITEM,
      Op.TUPLE3,
      Op.REDUCE,
      STOP,
    ];
    expect((unpickle(bytes(proto(2), ex)).value as OpaqueObject).kwargs).toEqual(
      new Map([["k", 1]]),
    );
    // Other dunders of copyreg stay denied.
    refused(
      [proto(2), global("copyreg", "__dict__"), STOP],
      UnsafeCheckpointError,
      "UNSAFE_GLOBAL",
    );
  });

  it("BUILD on a global would modify a class or module", () => {
    const parts = [global("mylib", "Config"), Op.EMPTY_DICT, Op.BUILD, STOP];
    const error = refused(parts, UnsafeCheckpointError, "UNSAFE_BUILD");
    expect((error as UnsafeCheckpointError).global).toBe("mylib.Config");
  });

  it("BUILD on a value without state", () => {
    refused([binint1(1), Op.EMPTY_DICT, Op.BUILD, STOP], PickleError, "BAD_OPERAND");
    refused([Op.EMPTY_LIST, binint1(1), Op.BUILD, STOP], PickleError, "BAD_OPERAND");
  });

  it("a defaultdict whose factory is not a builtin type", () => {
    const parts = [
      global("collections", "defaultdict"),
      global("mylib", "factory"),
      Op.TUPLE1,
      Op.REDUCE,
      STOP,
    ];
    refused([proto(2), parts], UnsafeCheckpointError, "UNSAFE_CALL");
  });

  it("persistent id without a loader", () => {
    const error = refused([Op.PERSID, "0\n", STOP], PickleError, "NO_PERSISTENT_LOAD");
    expect(error.message).toContain("persistent id without a loader");
    refused([proto(2), binint1(0), Op.BINPERSID, STOP], PickleError, "NO_PERSISTENT_LOAD");
    refused([Op.PERSID, "\xe9\n", STOP], PickleError, "BAD_STRING", {
      persistentLoad: { load: () => null },
    });
  });
});

describe("frames (CPython's _Unframer)", () => {
  it("a read straddling the end of a frame", () => {
    // FRAME of 3 bytes holding the first 3 of BININT's 5.
    const error = refused([proto(4), frame(3), binint(7), STOP], PickleError, "FRAME_BOUNDARY");
    expect(error.offset).toBe(11);
    refused([proto(4), frame(2), binunicode("abc"), STOP], PickleError, "FRAME_BOUNDARY");
    // An opcode whose operand lies wholly after its frame (fickling's frame_straddle_binbytes):
    // CPython's _Unframer would read it, its pickler never writes it.
    refused([proto(4), frame(5), Op.BINBYTES, u32(3), "abc", STOP], PickleError, "FRAME_BOUNDARY");
    refused([proto(4), frame(1), Op.BININT1, 7, STOP], PickleError, "FRAME_BOUNDARY");
    // A text line whose newline is outside the frame.
    refused([proto(4), frame(4), global("mylib", "x"), STOP], PickleError, "FRAME_BOUNDARY");
  });

  it("a FRAME before the current one is exhausted", () => {
    // The outer frame holds NONE, the inner FRAME (9 bytes), NONE and STOP.
    const nested = [proto(4), frame(12), Op.NONE, frame(2), Op.NONE, STOP];
    refused(nested, PickleError, "FRAME_BOUNDARY");
  });

  it("reads continue outside an exhausted frame", () => {
    expect(unpickle(bytes(proto(4), frame(1), Op.NONE, STOP)).value).toBeNull();
    expect(unpickle(bytes(proto(4), frame(1), Op.NONE, frame(1), STOP)).value).toBeNull();
  });

  it("a FRAME longer than the bytes left is TRUNCATED", () => {
    refused([proto(4), frame(100), Op.NONE, STOP], PickleError, "TRUNCATED");
  });
});

describe("unhashable dict keys and set members", () => {
  const listKey = [Op.EMPTY_DICT, Op.EMPTY_LIST, Op.NONE, Op.SETITEM, STOP];
  it("list, dict, set, bytearray as keys", () => {
    refused(listKey, PickleError, "UNHASHABLE");
    refused([Op.EMPTY_DICT, Op.EMPTY_DICT, Op.NONE, Op.SETITEM, STOP], PickleError, "UNHASHABLE");
    refused(
      [proto(4), Op.EMPTY_DICT, Op.EMPTY_SET, Op.NONE, Op.SETITEM, STOP],
      PickleError,
      "UNHASHABLE",
    );
    const bytearray = [Op.BYTEARRAY8, u64(1), "x"];
    refused(
      [proto(5), Op.EMPTY_DICT, bytearray, Op.NONE, Op.SETITEM, STOP],
      PickleError,
      "UNHASHABLE",
    );
    refused([Op.MARK, Op.EMPTY_LIST, Op.NONE, Op.DICT, STOP], PickleError, "UNHASHABLE");
  });

  it("tuples containing them, however deeply", () => {
    const nested = [
      Op.EMPTY_DICT,
      Op.EMPTY_LIST,
      Op.TUPLE1,
      Op.TUPLE1,
      binint1(1),
      Op.TUPLE2,
      Op.NONE,
      Op.SETITEM,
      STOP,
    ];
    const error = refused([proto(2), nested], PickleError, "UNHASHABLE");
    expect(error.message).toContain("'list'");
  });

  it("set members and frozenset members", () => {
    refused(
      [proto(4), Op.EMPTY_SET, Op.MARK, Op.EMPTY_LIST, Op.ADDITEMS, STOP],
      PickleError,
      "UNHASHABLE",
    );
    refused([proto(4), Op.MARK, Op.EMPTY_DICT, Op.FROZENSET, STOP], PickleError, "UNHASHABLE");
    // A set containing itself (fickling's cycle_set_contains_self_unhashable).
    refused(
      [proto(4), Op.EMPTY_SET, Op.MEMOIZE, Op.MARK, binget(0), Op.ADDITEMS, STOP],
      PickleError,
      "UNHASHABLE",
    );
    refused(
      [
        proto(2),
        global("builtins", "set"),
        Op.EMPTY_LIST,
        Op.EMPTY_LIST,
        Op.APPEND,
        Op.TUPLE1,
        Op.REDUCE,
        STOP,
      ],
      PickleError,
      "UNHASHABLE",
    );
  });

  it("hashable keys open: tuples of tuples, frozensets, bytes, None", () => {
    const parts = [
      proto(4),
      Op.EMPTY_DICT,
      binint1(1),
      Op.TUPLE1,
      Op.TUPLE1,
      Op.NONE,
      Op.SETITEM,
      Op.MARK,
      binint1(2),
      Op.FROZENSET,
      Op.NONE,
      Op.SETITEM,
      Op.SHORT_BINBYTES,
      1,
      "b",
      Op.NONE,
      Op.SETITEM,
      STOP,
    ];
    expect((unpickle(bytes(...parts)).value as Map<unknown, unknown>).size).toBe(3);
  });

  it("self-referencing containers are legal", () => {
    const list = unpickle(bytes(Op.EMPTY_LIST, binput(0), binget(0), Op.APPEND, STOP))
      .value as unknown[];
    expect(list[0]).toBe(list);
    const dict = unpickle(
      bytes(Op.EMPTY_DICT, binput(0), shortBinunicode("self"), binget(0), Op.SETITEM, STOP),
    ).value as Map<unknown, unknown>;
    expect(dict.get("self")).toBe(dict);
  });
});

describe("malformed streams", () => {
  it("truncated input", () => {
    for (const data of [[], [proto(2)], [Op.BININT, 1, 2], [Op.INT, "12"], [Op.NONE]] as Part[][]) {
      refused(data, PickleError, "TRUNCATED");
    }
  });

  it("missing MARK", () => {
    for (const op of [
      Op.TUPLE,
      Op.LIST,
      Op.DICT,
      Op.APPENDS,
      Op.SETITEMS,
      Op.POP_MARK,
      Op.FROZENSET,
    ]) {
      const error = refused([Op.EMPTY_LIST, op, STOP], PickleError, "MARK_MISSING");
      expect(error.offset).toBe(1);
    }
  });

  it("stack underflow, including reaching below a MARK", () => {
    refused([Op.POP, STOP], PickleError, "STACK_UNDERFLOW");
    refused([Op.DUP, STOP], PickleError, "STACK_UNDERFLOW");
    refused([proto(2), Op.NONE, Op.TUPLE2, STOP], PickleError, "STACK_UNDERFLOW");
    refused([Op.NONE, Op.MARK, Op.REDUCE, STOP], PickleError, "STACK_UNDERFLOW");
    refused([Op.NONE, Op.MARK, binput(0), STOP], PickleError, "STACK_UNDERFLOW");
    refused([proto(4), Op.NONE, Op.MARK, Op.STACK_GLOBAL, STOP], PickleError, "STACK_UNDERFLOW");
    // SETITEMS with nothing below its MARK, with and without items above it.
    for (const items of [[], [Op.NONE, Op.NONE]]) {
      const error = refused([Op.MARK, ...items, Op.SETITEMS, STOP], PickleError, "STACK_UNDERFLOW");
      expect(error.message).toContain("SETITEMS needs a value but the stack is empty");
    }
    const below = refused(
      [Op.MARK, Op.MARK, Op.NONE, Op.NONE, Op.SETITEMS, STOP],
      PickleError,
      "STACK_UNDERFLOW",
    );
    expect(below.message).toContain("SETITEMS needs a value but finds a MARK");
  });

  it("STOP with anything but exactly one value", () => {
    refused([STOP], PickleError, "BAD_STOP");
    refused([Op.NONE, Op.NONE, STOP], PickleError, "BAD_STOP");
    refused([Op.MARK, Op.NONE, STOP], PickleError, "BAD_STOP");
  });

  it("memo: missing entries and bad indices", () => {
    refused([binget(5), STOP], PickleError, "MEMO_MISSING");
    refused([Op.LONG_BINGET, u32(0xffffffff), STOP], PickleError, "MEMO_MISSING");
    refused([Op.NONE, Op.PUT, "-1\n", STOP], PickleError, "BAD_MEMO_INDEX");
    refused([Op.GET, "x\n", STOP], PickleError, "BAD_MEMO_INDEX");
  });

  it("unknown opcodes name the byte and the offset", () => {
    const error = refused([Op.NONE, 0xff, STOP], PickleError, "UNKNOWN_OPCODE", {
      file: "x.pkl",
      baseOffset: 64,
    });
    expect(error.message).toContain("0xff");
    expect(error.offset).toBe(65);
    expect(error.file).toBe("x.pkl");
  });

  it("extension codes and out-of-band buffers are refused", () => {
    refused([proto(2), Op.EXT1, 1, STOP], PickleError, "EXTENSION_CODE");
    refused([proto(2), Op.EXT2, 1, 0, STOP], PickleError, "EXTENSION_CODE");
    refused([proto(2), Op.EXT4, u32(1), STOP], PickleError, "EXTENSION_CODE");
    refused([proto(5), Op.NEXT_BUFFER, STOP], PickleError, "OUT_OF_BAND_BUFFER");
    refused([proto(5), Op.NONE, Op.READONLY_BUFFER, STOP], PickleError, "OUT_OF_BAND_BUFFER");
  });

  it("wrong operand types", () => {
    refused(
      [proto(4), binint1(1), shortBinunicode("x"), Op.STACK_GLOBAL, STOP],
      PickleError,
      "BAD_OPERAND",
    );
    refused([Op.EMPTY_DICT, Op.NONE, Op.APPEND, STOP], PickleError, "BAD_OPERAND");
    refused([Op.EMPTY_TUPLE, Op.NONE, Op.APPEND, STOP], PickleError, "BAD_OPERAND");
    refused([Op.EMPTY_LIST, Op.NONE, Op.NONE, Op.SETITEM, STOP], PickleError, "BAD_OPERAND");
    refused([Op.EMPTY_DICT, Op.MARK, Op.NONE, Op.SETITEMS, STOP], PickleError, "BAD_OPERAND");
    refused(
      [Op.EMPTY_LIST, Op.MARK, Op.NONE, Op.NONE, Op.SETITEMS, STOP],
      PickleError,
      "BAD_OPERAND",
    );
    refused(
      [proto(4), Op.MARK, Op.FROZENSET, Op.MARK, Op.NONE, Op.ADDITEMS, STOP],
      PickleError,
      "BAD_OPERAND",
    );
    refused([Op.STRING, "abc\n", STOP], PickleError, "BAD_STRING");
    refused([Op.INT, "12x\n", STOP], PickleError, "BAD_LITERAL");
    refused([Op.FLOAT, "1.2.3\n", STOP], PickleError, "BAD_LITERAL");
    refused([Op.BINUNICODE, u32(1), 0xff, STOP], PickleError, "BAD_STRING");
    refused([Op.UNICODE, "\\u12\n", STOP], PickleError, "BAD_STRING");
    refused([Op.STRING, "'\\x4'\n", STOP], PickleError, "BAD_STRING");
    refused([Op.GLOBAL, "\xff\nx\n", STOP], PickleError, "BAD_STRING");
  });

  it("unsupported protocol", () => {
    refused([proto(6), Op.NONE, STOP], PickleError, "UNSUPPORTED_PROTOCOL");
  });

  it("a start outside the bytes", () => {
    expect(() => unpickle(bytes(Op.NONE, STOP), {}, 3)).toThrowError(PickleError);
  });
});

describe("shared references stay shared (billion laughs stays small)", () => {
  it("30 levels of [x, x] open as 30 objects, not 2^30", () => {
    const parts: Part[] = [proto(2), Op.EMPTY_LIST];
    for (let level = 0; level < 30; level++) parts.push(Op.DUP, Op.TUPLE2);
    parts.push(STOP);
    let value = unpickle(bytes(...parts)).value as unknown[];
    for (let level = 0; level < 30; level++) {
      expect(value[0]).toBe(value[1]);
      value = value[0] as unknown[];
    }
    expect(value).toEqual([]);
  });

  it("the same memo entry fetched many times is one object", () => {
    const parts: Part[] = [Op.EMPTY_LIST, binput(0), Op.MARK];
    for (let i = 0; i < 1000; i++) parts.push(binget(0));
    parts.push(Op.APPENDS, STOP);
    const list = unpickle(bytes(...parts)).value as unknown[];
    expect(list.length).toBe(1000);
    expect(list.every((item) => item === list)).toBe(true);
  });
});

describe("errors from handlers get this pickle's location", () => {
  it("a LoadoutError without offset, and a plain Error", () => {
    const parts = [global("mylib", "f"), Op.EMPTY_TUPLE, Op.REDUCE, STOP];
    const located = failure(bytes(...parts), {
      file: "m.pkl",
      resolveGlobal: () => ({
        call: () => {
          throw new PickleError("BAD_ARGUMENTS", "mylib.f: wrong");
        },
      }),
    });
    expect(located.code).toBe("BAD_ARGUMENTS");
    expect(located.offset).toBe(10);
    expect(located.file).toBe("m.pkl");
    const wrapped = failure(bytes(...parts), {
      resolveGlobal: () => ({
        call: () => {
          throw new TypeError("oops");
        },
      }),
    });
    expect(wrapped).toBeInstanceOf(PickleError);
    expect(wrapped.code).toBe("UNEXPECTED");
    expect(wrapped.cause).toBeInstanceOf(TypeError);
  });
});
