import { describe, expect, it } from "vitest";
import { PickleError, UnsafeCheckpointError } from "../../src/errors.js";
import { denialReason } from "../../src/formats/pickle/deny.js";
import { isByteArray, isFrozenSet, pyAttributes } from "../../src/formats/pickle/markers.js";
import { Memo } from "../../src/formats/pickle/memo.js";
import { NumpyArray, type NumpyScalar } from "../../src/formats/pickle/numpy.js";
import { Op } from "../../src/formats/pickle/opcodes.js";
import type { Buildable, GlobalHandler, UnpickleOptions } from "../../src/formats/pickle/types.js";
import { unpickle } from "../../src/formats/pickle/unpickler.js";
import {
  isTuple,
  OpaqueObject,
  PyComplex,
  PyGlobal,
  type PyObjectLike,
  type PyValue,
} from "../../src/formats/pickle/values.js";
import {
  binget,
  binint1,
  binput,
  binunicode,
  bytes,
  global,
  type Part,
  proto,
  shortBinunicode,
  stackGlobal,
  u32,
} from "./assemble.js";

/** The call policy: caller handlers, the builtin allowlist, opaque objects, BUILD, persistent ids. */

const STOP = Op.STOP;
const run = (parts: Part[], options: UnpickleOptions = {}) => unpickle(bytes(...parts), options);

/** `global(*args)` as protocol 2 writes it. */
function call(module: string, name: string, ...args: Part[]): Part {
  return [global(module, name), Op.MARK, ...args, Op.TUPLE, Op.REDUCE];
}

describe("the caller's handlers", () => {
  it("are asked first, and get the arguments and a context", () => {
    const seen: unknown[] = [];
    const handler: GlobalHandler = {
      call(args, context) {
        seen.push(args, context);
        return "from caller";
      },
    };
    const result = run([proto(2), call("collections", "OrderedDict"), STOP], {
      file: "ckpt.pt",
      resolveGlobal: (module, name) =>
        module === "collections" && name === "OrderedDict" ? handler : undefined,
    });
    expect(result.value).toBe("from caller");
    expect(isTuple(seen[0])).toBe(true);
    expect(seen[1]).toEqual({ global: "collections.OrderedDict", file: "ckpt.pt" });
  });

  it("fall back to the builtin allowlist when they have no handler", () => {
    const result = run([proto(2), call("collections", "OrderedDict"), STOP], {
      resolveGlobal: () => undefined,
    });
    expect(result.value).toEqual(new Map());
  });

  it("construct NEWOBJ instances; the handler is looked up once per global", () => {
    let lookups = 0;
    const made: PyValue[] = [];
    const options: UnpickleOptions = {
      resolveGlobal: () => {
        lookups++;
        return {
          construct(args, kwargs) {
            const object = { pyClass: "mine.Made", args, kwargs } as PyObjectLike;
            made.push(object);
            return object;
          },
        };
      },
    };
    const result = run(
      [
        proto(2),
        Op.EMPTY_LIST,
        global("mine", "Made"),
        binput(0),
        binint1(1),
        Op.TUPLE1,
        Op.NEWOBJ,
        Op.APPEND,
        binget(0),
        binint1(2),
        Op.TUPLE1,
        Op.NEWOBJ,
        Op.APPEND,
        STOP,
      ],
      options,
    );
    expect(result.value).toEqual(made);
    expect(lookups).toBe(1);
    expect(result.opaqueClasses.size).toBe(0);
  });

  it("Buildable results take BUILD's state", () => {
    class Config implements PyObjectLike, Buildable {
      readonly pyClass = "mine.Config";
      state: PyValue = null;
      setState(state: PyValue) {
        this.state = state;
      }
    }
    const result = run([proto(2), call("mine", "config"), binint1(7), Op.BUILD, STOP], {
      resolveGlobal: () => ({ call: () => new Config() }),
    });
    expect(result.value).toBeInstanceOf(Config);
    expect((result.value as Config).state).toBe(7);
  });

  it("persistent ids go to persistentLoad (BINPERSID and PERSID)", () => {
    const pids: PyValue[] = [];
    const persistentLoad = {
      load(pid: PyValue) {
        pids.push(pid);
        return `storage ${pids.length}`;
      },
    };
    const pid = [Op.MARK, shortBinunicode("storage"), shortBinunicode("0"), Op.TUPLE];
    expect(run([proto(4), pid, Op.BINPERSID, STOP], { persistentLoad }).value).toBe("storage 1");
    expect(pids[0]).toEqual(["storage", "0"]);
    expect(run([Op.PERSID, "abc\n", STOP], { persistentLoad }).value).toBe("storage 2");
    expect(pids[1]).toBe("abc");
  });
});

describe("opaque objects", () => {
  it("allowGlobals turns a call into an inert OpaqueObject with its arguments and state", () => {
    const state = [Op.EMPTY_DICT, shortBinunicode("k"), binint1(1), Op.SETITEM];
    const result = run(
      [proto(2), call("argparse", "Namespace", binint1(5)), state, Op.BUILD, STOP],
      {
        allowGlobals: ["argparse.Namespace"],
      },
    );
    const object = result.value as OpaqueObject;
    expect(object).toBeInstanceOf(OpaqueObject);
    expect(object.pyClass).toBe("argparse.Namespace");
    expect(object.args).toEqual([5]);
    expect(object.state).toEqual(new Map([["k", 1]]));
    expect([...result.opaqueClasses]).toEqual(["argparse.Namespace"]);
    // Without it, the same call is refused.
    expect(() => run([proto(2), call("argparse", "Namespace", binint1(5)), STOP])).toThrowError(
      UnsafeCheckpointError,
    );
  });

  it("INST and OBJ (Python 2 instances) with allowGlobals", () => {
    const options = { allowGlobals: ["mod.Old"] };
    const inst = run([Op.MARK, binint1(1), Op.INST, "mod\nOld\n", STOP], options)
      .value as OpaqueObject;
    expect(inst.pyClass).toBe("mod.Old");
    expect(inst.args).toEqual([1]);
    const obj = run([Op.MARK, global("mod", "Old"), binint1(2), Op.OBJ, STOP], options)
      .value as OpaqueObject;
    expect(obj.args).toEqual([2]);
  });

  it("SETITEMS and APPENDS fill an opaque object's dictItems and listItems", () => {
    const result = run([
      proto(2),
      global("mine", "Bag"),
      Op.EMPTY_TUPLE,
      Op.NEWOBJ,
      Op.MARK,
      shortBinunicode("a"),
      binint1(1),
      Op.SETITEMS,
      binint1(9),
      Op.APPEND,
      STOP,
    ]);
    const bag = result.value as OpaqueObject;
    expect(bag.dictItems).toEqual(new Map([["a", 1]]));
    expect(bag.listItems).toEqual([9]);
  });

  it("NEWOBJ_EX keeps keyword arguments", () => {
    const kwargs = [Op.EMPTY_DICT, shortBinunicode("scale"), binint1(2), Op.SETITEM];
    const result = run([
      proto(4),
      stackGlobal("mine", "Scaled"),
      binint1(1),
      Op.TUPLE1,
      kwargs,
      Op.NEWOBJ_EX,
      STOP,
    ]);
    const object = result.value as OpaqueObject;
    expect(object.args).toEqual([1]);
    expect(object.kwargs).toEqual(new Map([["scale", 2]]));
  });

  it("a global that is only named stays an inert reference", () => {
    const value = run([proto(4), stackGlobal("loadout_fixture", "Point"), STOP]).value as PyGlobal;
    expect(value).toBeInstanceOf(PyGlobal);
    expect(value.qualifiedName).toBe("loadout_fixture.Point");
  });
});

describe("BUILD on plain containers keeps the attributes aside", () => {
  it("an OrderedDict's _metadata, as torch state dicts carry it", () => {
    const metadata = [
      Op.EMPTY_DICT,
      shortBinunicode(""),
      Op.EMPTY_DICT,
      shortBinunicode("version"),
      binint1(1),
      Op.SETITEM,
      Op.SETITEM,
    ];
    const state = [Op.EMPTY_DICT, shortBinunicode("_metadata"), metadata, Op.SETITEM];
    const result = run([proto(2), call("collections", "OrderedDict"), state, Op.BUILD, STOP]);
    const dict = result.value as Map<PyValue, PyValue>;
    expect(dict.size).toBe(0);
    const attributes = pyAttributes(dict)!;
    expect((attributes.get("_metadata") as Map<PyValue, PyValue>).get("")).toEqual(
      new Map([["version", 1]]),
    );
  });

  it("a (dict, slots) state pair, and None", () => {
    const pair = [Op.NONE, Op.EMPTY_DICT, shortBinunicode("s"), binint1(3), Op.SETITEM, Op.TUPLE2];
    const list = run([proto(2), Op.EMPTY_LIST, pair, Op.BUILD, Op.NONE, Op.BUILD, STOP]).value;
    expect(pyAttributes(list)).toEqual(new Map([["s", 3]]));
    expect(pyAttributes([])).toBeUndefined();
  });
});

describe("the builtin allowlist", () => {
  it("set, frozenset, bytes, bytearray, complex under builtins and __builtin__", () => {
    const list = [Op.EMPTY_LIST, Op.MARK, binint1(1), binint1(2), Op.APPENDS];
    const set = run([proto(2), call("__builtin__", "set", list), STOP]).value as Set<PyValue>;
    expect([...set]).toEqual([1, 2]);
    expect(isFrozenSet(set)).toBe(false);
    const frozen = run([proto(3), call("builtins", "frozenset", list), STOP]).value;
    expect(isFrozenSet(frozen)).toBe(true);
    expect(run([proto(2), call("__builtin__", "bytes"), STOP]).value).toEqual(new Uint8Array(0));
    // Python 2 pickled bytearray as bytearray(u'...', 'latin-1').
    const py2 = run([
      proto(2),
      call("__builtin__", "bytearray", binunicode("\u00ff\u0001"), binunicode("latin-1")),
      STOP,
    ]).value;
    expect(py2).toEqual(Uint8Array.of(0xff, 1));
    expect(isByteArray(py2)).toBe(true);
    const complex = run([
      proto(2),
      call("builtins", "complex", binint1(1), binint1(2)),
      STOP,
    ]).value;
    expect(complex).toEqual(new PyComplex(1, 2));
  });

  it("_codecs.encode: latin1 and utf-8, refusing what does not encode", () => {
    const encode = (text: string, encoding: string) =>
      run([proto(2), call("_codecs", "encode", binunicode(text), binunicode(encoding)), STOP])
        .value;
    expect(encode("\u00e9\u00ff", "latin1")).toEqual(Uint8Array.of(0xe9, 0xff));
    expect(encode("\u00e9", "utf-8")).toEqual(Uint8Array.of(0xc3, 0xa9));
    expect(() => encode("\u0100", "latin1")).toThrowError(
      expect.objectContaining({ code: "BAD_ARGUMENTS" }),
    );
    expect(() => encode("x", "rot13")).toThrowError(
      expect.objectContaining({ code: "BAD_ARGUMENTS" }),
    );
  });

  it("OrderedDict from pairs, defaultdict and Counter give Maps", () => {
    const pairs = [
      Op.EMPTY_LIST,
      Op.MARK,
      shortBinunicode("b"),
      binint1(1),
      Op.TUPLE2,
      shortBinunicode("a"),
      binint1(2),
      Op.TUPLE2,
      Op.APPENDS,
    ];
    const ordered = run([proto(2), call("collections", "OrderedDict", pairs), STOP]).value;
    expect([...(ordered as Map<PyValue, PyValue>)]).toEqual([
      ["b", 1],
      ["a", 2],
    ]);
    const withFactory = run([
      proto(2),
      call("collections", "defaultdict", global("__builtin__", "list")),
      STOP,
    ]).value;
    expect(withFactory).toEqual(new Map());
    const counter = run([proto(2), call("collections", "Counter", Op.EMPTY_DICT), STOP]).value;
    expect(counter).toEqual(new Map());
  });

  it("numpy: array data must match shape and dtype", () => {
    const dtype = [
      call("numpy", "dtype", binunicode("f4"), Op.NEWFALSE, Op.NEWTRUE),
      Op.MARK,
      binint1(3),
      binunicode("<"),
      Op.NONE,
      Op.NONE,
      Op.NONE,
      Op.TUPLE,
      Op.BUILD,
    ];
    const reconstruct = call(
      "numpy.core.multiarray",
      "_reconstruct",
      global("numpy", "ndarray"),
      binint1(0),
      Op.TUPLE1,
      [Op.SHORT_BINBYTES, 1, "b"],
    );
    const state = (raw: Part) => [
      Op.MARK,
      binint1(1),
      binint1(2),
      Op.TUPLE1,
      dtype,
      Op.NEWFALSE,
      raw,
      Op.TUPLE,
      Op.BUILD,
    ];
    const good = run([
      proto(3),
      reconstruct,
      state([Op.SHORT_BINBYTES, 8, u32(0), 0, 0, 0x80, 0x3f]),
      STOP,
    ]).value as NumpyArray;
    expect(good).toBeInstanceOf(NumpyArray);
    expect(good.dtype).toBe("float32");
    expect(new Float32Array(new Uint8Array(good.data as Uint8Array).buffer)).toEqual(
      Float32Array.of(0, 1),
    );
    expect(() =>
      run([proto(3), reconstruct, state([Op.SHORT_BINBYTES, 4, u32(0)]), STOP]),
    ).toThrowError(expect.objectContaining({ code: "BAD_ARGUMENTS" }));
    // A numpy scalar's value.
    const scalar = run([
      proto(3),
      call("numpy.core.multiarray", "scalar", dtype, [Op.SHORT_BINBYTES, 4, 0, 0, 0xc0, 0x3f]),
      STOP,
    ]).value;
    expect((scalar as NumpyScalar).value).toBe(1.5);
  });

  it("a handler's error carries the opcode's offset", () => {
    let error: PickleError | undefined;
    try {
      run([proto(2), call("builtins", "complex", binunicode("x")), STOP], { file: "f.pkl" });
    } catch (caught) {
      error = caught as PickleError;
    }
    expect(error).toBeInstanceOf(PickleError);
    expect(error!.file).toBe("f.pkl");
    expect(error!.offset).toBe(2 + 18 + 1 + 6 + 1);
  });
});

describe("pickles back to back", () => {
  it("start and end read one after another, as legacy torch files need", () => {
    const data = bytes(
      proto(2),
      binint1(1),
      STOP,
      proto(2),
      shortBinunicode("two"),
      STOP,
      Op.NONE,
      STOP,
    );
    const first = unpickle(data);
    expect(first).toMatchObject({ value: 1, end: 5 });
    const second = unpickle(data, {}, first.end);
    expect(second).toMatchObject({ value: "two", end: 13 });
    const third = unpickle(data, { baseOffset: 100 }, second.end);
    expect(third).toMatchObject({ value: null, end: data.length });
  });
});

describe("deny list", () => {
  it("names why", () => {
    expect(denialReason("os", "system")).toContain("'os'");
    expect(denialReason("builtins", "eval")).toContain("'eval'");
    expect(denialReason("torch._utils", "_rebuild_tensor_v2")).toBeUndefined();
    expect(denialReason("__main__", "MyConfig")).toBeUndefined();
    expect(denialReason("numpy.core.multiarray", "_reconstruct")).toBeUndefined();
  });
});

describe("memo", () => {
  it("keeps any 32-bit index, whatever the order", () => {
    const memo = new Memo();
    memo.set(2, "c");
    memo.set(0xffffffff, "far");
    memo.set(0, "a");
    memo.set(1, "b");
    expect([memo.get(0), memo.get(1), memo.get(2), memo.get(0xffffffff)]).toEqual([
      "a",
      "b",
      "c",
      "far",
    ]);
    expect(memo.size).toBe(4);
    memo.set(2, "C");
    memo.set(3, "d");
    expect([memo.get(2), memo.get(3), memo.get(4)]).toEqual(["C", "d", undefined]);
    expect(memo.size).toBe(5);
  });
});
