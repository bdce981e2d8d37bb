import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { WriteError } from "../../../src/errors.js";
import { unpickle } from "../../../src/formats/pickle/unpickler.js";
import {
  encodeLong,
  PickleReduction,
  PyGlobalName,
  pickle,
  pyFloat,
  pyOrderedDict,
  pyTuple,
  type WritableValue,
} from "../../../src/writers/torch/pickler.js";

/** Expected bytes: CPython's C pickler (protocol 2), from fixtures/make-pickles.py. */
const expected: Record<string, string> = JSON.parse(
  readFileSync(new URL("fixtures/pickles.json", import.meta.url), "utf8"),
).pickles;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** The values make-pickles.py pickles, built the loadout way, by the same names. */
function cases(): [string, WritableValue][] {
  const shared = [1];
  const strings = range(300).map((i) => `s${i}`);
  let deep: WritableValue = [];
  for (let i = 0; i < 300; i++) deep = [deep];
  const out: [string, WritableValue][] = [
    ["none", null],
    ["true", true],
    ["false", false],
  ];
  const ints = [0, 1, 255, 256, 65535, 65536, -1, -128, -129, -32768, -65536];
  ints.push(2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53 - 1));
  for (const n of ints) out.push([`int ${n}`, n]);
  const bigints: [string, bigint][] = [
    ["2^63", 2n ** 63n],
    ["-2^63", -(2n ** 63n)],
    ["2^64", 2n ** 64n],
    ["-2^64", -(2n ** 64n)],
    ["-2^64-1", -(2n ** 64n) - 1n],
    ["2^2100", 2n ** 2100n],
    ["-2^2100", -(2n ** 2100n)],
    ["255*2^2032", 255n * 2n ** 2032n],
  ];
  for (const [name, n] of bigints) out.push([`bigint ${name}`, n]);
  out.push(
    ["float 1.5", 1.5],
    ["float -0.0", -0],
    ["float 0.1", 0.1],
    ["float inf", Number.POSITIVE_INFINITY],
    ["float -inf", Number.NEGATIVE_INFINITY],
    ["float nan", Number.NaN],
    ["float 1.0", pyFloat(1)],
    ["float 2^53", 2 ** 53],
    ["float 1e300", 1e300],
    ["float -5e-324", -5e-324],
    ["str empty", ""],
    ["str ascii", "abc"],
    ["str latin", "h\u00e9llo"],
    ["str emoji", "\u{1F600}"],
    ["str lone surrogate", "a\udc80b\ud800"],
    ["str newline", "a\nb"],
    ["bytes ab", new Uint8Array([0x61, 0x62])],
    ["bytes all", Uint8Array.from(range(256))],
    ["bytes empty", new Uint8Array(0)],
  );
  for (const n of [0, 1, 2, 999, 1000, 1001]) out.push([`list ${n}`, range(n)]);
  for (const n of [0, 1, 2, 3, 4]) out.push([`tuple ${n}`, pyTuple(range(n))]);
  for (const n of [0, 1, 2, 1000, 1001])
    out.push([`dict ${n}`, new Map(range(n).map((i) => [i, i]))]);
  for (const n of [0, 1, 2, 1000, 1001]) {
    out.push([`ordereddict ${n}`, pyOrderedDict(range(n).map((i) => [`k${i}`, i] as const))]);
  }
  out.push(
    ["dict str keys", { a: 1, b: "a" }],
    ["dict tuple key", new Map([[pyTuple([1, "a"]), null]])],
    ["set", new Set([1, 2])],
    ["shared list", [shared, shared]],
    ["shared string", ["s", "s", "t"]],
    ["long memo", [...strings, strings[0]!, strings[299]!]],
    [
      "nested",
      new Map<string, WritableValue>([
        ["a", [1, pyTuple([2.5, "x"])]],
        ["b", { c: null }],
        ["d", pyTuple([])],
      ]),
    ],
    ["deep 300", deep],
  );
  return out;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

describe("pickle (protocol 2) matches CPython's pickler byte for byte", () => {
  const all = cases();

  it("covers every case the generator wrote", () => {
    expect(all.map(([name]) => name).sort()).toEqual(Object.keys(expected).sort());
  });

  for (const [name, value] of all) {
    it(name, () => {
      expect(hex(pickle(value))).toBe(expected[name]);
    });
  }
});

describe("pickle round trips through loadout's unpickler", () => {
  it("reads back numbers, strings, bytes and containers", () => {
    const value = new Map<WritableValue, WritableValue>([
      ["ints", [0, -1, 300, 2 ** 40, -(2 ** 40)]],
      ["big", 2n ** 100n],
      ["floats", [1.5, pyFloat(2), -0]],
      ["text", "h\u00e9llo \u{1F600}"],
      ["bytes", new Uint8Array([0, 200, 255])],
      ["tuple", pyTuple([1, "a"])],
      [7, null],
    ]);
    const { value: back } = unpickle(pickle(value));
    expect(back).toEqual(
      new Map<unknown, unknown>([
        ["ints", [0, -1, 300, 2 ** 40, -(2 ** 40)]],
        ["big", 2n ** 100n],
        ["floats", [1.5, 2, -0]],
        ["text", "h\u00e9llo \u{1F600}"],
        ["bytes", new Uint8Array([0, 200, 255])],
        ["tuple", [1, "a"]],
        [7, null],
      ]),
    );
  });

  it("writes 100,000 nested lists without recursion", () => {
    let deep: WritableValue = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const bytes = pickle(deep);
    // PROTO 2 + STOP; per list EMPTY_LIST + (BINPUT 2 or LONG_BINPUT 5 bytes); APPEND for all but the innermost.
    const lists = 100_001;
    expect(bytes.byteLength).toBe(3 + lists + 256 * 2 + (lists - 256) * 5 + (lists - 1));
  });
});

describe("encodeLong", () => {
  it("is two's complement, little-endian and minimal, as pickle's encode_long", () => {
    // Values from Python: pickle.encode_long(n).hex()
    expect(hex(encodeLong(0n))).toBe("");
    expect(hex(encodeLong(255n))).toBe("ff00");
    expect(hex(encodeLong(-256n))).toBe("00ff");
    expect(hex(encodeLong(-128n))).toBe("80");
    expect(hex(encodeLong(-32768n))).toBe("0080");
    expect(hex(encodeLong(32767n))).toBe("ff7f");
    expect(hex(encodeLong(-(2n ** 63n)))).toBe("0000000000000080");
  });
});

describe("pickle refuses what Python cannot load as written", () => {
  const refusal = (value: unknown): WriteError => {
    try {
      pickle(value as WritableValue);
    } catch (error) {
      expect(error).toBeInstanceOf(WriteError);
      return error as WriteError;
    }
    throw new Error("pickle did not refuse");
  };

  it("names the path of a function, a symbol or undefined", () => {
    const error = refusal({ model: { layers: [1, () => 0] } });
    expect(error.code).toBe("UNPICKLABLE_VALUE");
    expect(error.key).toBe("model/layers/1");
    expect(refusal(new Map([["s", Symbol("x")]])).key).toBe("s");
    expect(refusal({ a: undefined }).message).toMatch(/undefined/);
  });

  it("refuses cycles but writes shared parts once", () => {
    const cyclic: WritableValue[] = [1];
    cyclic.push(cyclic);
    const error = refusal({ x: cyclic });
    expect(error.code).toBe("CYCLIC_VALUE");
    expect(error.key).toBe("x/1");
    const cyclicMap = new Map<string, unknown>();
    cyclicMap.set("self", cyclicMap);
    expect(refusal(cyclicMap).code).toBe("CYCLIC_VALUE");
  });

  it("refuses unhashable dict keys, typed arrays and unknown classes", () => {
    expect(refusal(new Map([[[1], 2]])).code).toBe("UNHASHABLE_KEY");
    expect(refusal(new Map([[pyTuple([new Map()]), 2]])).code).toBe("UNHASHABLE_KEY");
    expect(refusal({ w: new Float32Array(2) }).message).toMatch(/Float32Array/);
    class Foreign {}
    expect(refusal([new Foreign()]).message).toMatch(/Foreign/);
    expect(refusal(pyFloat("1" as unknown as number)).code).toBe("UNPICKLABLE_VALUE");
  });

  it("refuses global names that are not printable ASCII", () => {
    const bad = new PickleReduction(new PyGlobalName("torch", "bad name"), []);
    expect(refusal(bad).message).toMatch(/not printable ASCII/);
  });
});
