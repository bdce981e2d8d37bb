import { describe, expect, it } from "vitest";
import { FormatError, LimitExceededError, LoadError } from "../../src/errors.js";
import {
  OpaqueObject,
  PyComplex,
  PyGlobal,
  type PyValue,
} from "../../src/formats/pickle/values.js";
import { pyToPlain } from "../../src/state/plain-from-tree.js";
import { copyPlainValue } from "../../src/state/plain-value.js";
import { dict, scalarTensor, tensorOf, tuple } from "./helpers.js";

describe("pyToPlain", () => {
  it("converts Python containers and scalars to plain data", async () => {
    const tree = dict([
      [
        "ints",
        dict([
          [1, "a"],
          [2n ** 60n, "b"],
          [true, "c"],
          [null, "d"],
          [tuple(1, 2), "e"],
        ]),
      ],
      ["tuple", tuple(1, 2.5, "x")],
      ["set", new Set<PyValue>([3, 4])],
      ["big", 2n ** 64n + 1n],
      ["bytes", Uint8Array.from([0, 255, 16])],
      ["nan", Number.NaN],
      ["global", new PyGlobal("torch.optim.lr_scheduler", "StepLR")],
      ["complex", new PyComplex(1, -2)],
      ["object", new OpaqueObject("functools", "partial", [])],
    ]);
    expect(await pyToPlain(tree)).toEqual({
      ints: { "1": "a", "1152921504606846976": "b", True: "c", None: "d", "(1, 2)": "e" },
      tuple: [1, 2.5, "x"],
      set: [3, 4],
      big: "18446744073709551617",
      bytes: { __bytes__: "00ff10" },
      nan: Number.NaN,
      global: { __global__: "torch.optim.lr_scheduler.StepLR" },
      complex: { __complex__: [1, -2] },
      object: { __class__: "functools.partial" },
    });
  });

  it("reads 0-d tensors as numbers, int64 exactly, bool as booleans, small tensors whole", async () => {
    const tree = dict([
      ["lr", scalarTensor(0.5)],
      ["count", tensorOf([2n ** 62n + 1n], [], "int64")],
      ["small", tensorOf([7n], [], "int64")],
      ["flag", tensorOf([1], [], "bool")],
      ["half", tensorOf([0x3c00], [], "float16")],
      ["vector", tensorOf([1, 2, 3, 4], [2, 2])],
    ]);
    expect(await pyToPlain(tree)).toEqual({
      lr: 0.5,
      count: "4611686018427387905",
      small: 7,
      flag: true,
      half: 1,
      vector: { __tensor__: { dtype: "float32", shape: [2, 2], values: [1, 2, 3, 4] } },
    });
  });

  it("refuses a large tensor", async () => {
    await expect(pyToPlain(dict([["t", tensorOf(new Array(5000).fill(0))]]))).rejects.toThrow(
      LimitExceededError,
    );
  });

  it("keeps a key named __proto__ as a plain key", async () => {
    const plain = (await pyToPlain(dict([["__proto__", dict([["polluted", true]])]]))) as Record<
      string,
      unknown
    >;
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
    expect(Object.keys(plain)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses two keys with the same text", async () => {
    await expect(
      pyToPlain(
        dict([
          [1, "a"],
          ["1", "b"],
        ]),
      ),
    ).rejects.toThrow(/two keys read as '1'/);
  });

  it("refuses a cycle and names where it is", async () => {
    const inner: PyValue[] = [1];
    inner.push(dict([["back", inner]]));
    const error = await pyToPlain(dict([["a", inner]]), ["lr_schedulers", 0]).catch((e) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect(error.key).toBe("lr_schedulers/0/a/1/back");
  });

  it("bounds shared references that multiply the tree (billion laughs)", async () => {
    let value: PyValue = [1, 2];
    for (let i = 0; i < 40; i++) value = [value, value];
    await expect(pyToPlain(value)).rejects.toThrow(LimitExceededError);
  });

  it("handles deep nesting without recursion", async () => {
    let value: PyValue = 1;
    for (let i = 0; i < 50_000; i++) value = [value];
    let plain = await pyToPlain(value);
    let depth = 0;
    while (Array.isArray(plain)) {
      plain = plain[0]!;
      depth++;
    }
    expect(depth).toBe(50_000);
  });
});

describe("copyPlainValue", () => {
  it("copies deeply and keeps key order", () => {
    const value = { b: [1, { c: "x" }], a: null };
    const copy = copyPlainValue(value);
    expect(copy).toEqual(value);
    expect(Object.keys(copy as object)).toEqual(["b", "a"]);
    expect((copy as { b: unknown }).b).not.toBe(value.b);
  });

  it("refuses what is not plain data", () => {
    expect(() => copyPlainValue({ a: undefined })).toThrow(LoadError);
    expect(() => copyPlainValue({ a: new Map() })).toThrow(/value\.a is a Map/);
    expect(() => copyPlainValue([1, 2, 3], "v", 3)).toThrow(LimitExceededError);
  });
});

describe("pyToPlain dict keys", () => {
  it("describes nested tuple keys without recursing into them", async () => {
    let key: PyValue = tuple(1);
    for (let i = 0; i < 100_000; i++) key = tuple(key);
    expect(await pyToPlain(dict([[key, 1]]))).toEqual({ "tuple(1)": 1 });
  });
});
