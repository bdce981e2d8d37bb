import { describe, expect, it } from "vitest";
import { ConfigError, MergeConflictError, TensorError } from "../../src/errors.js";
import { mergeStateDicts } from "../../src/keys/merge.js";
import {
  bfloat16BitsToFloat,
  floatToBfloat16Bits,
  floatToHalfBits,
  halfBitsToFloat,
} from "../../src/tensors/convert.js";
import type { DType } from "../../src/tensors/dtype.js";
import type { TensorLike } from "../../src/tensors/tensor-like.js";
import { fromHexBits, memoryTensor, readFixture, toHexBits } from "./helpers.js";

function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}

async function rejected(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

const f32 = (values: number[], shape = [values.length]) =>
  memoryTensor("float32", shape, Float32Array.from(values));

describe("mergeStateDicts: override", () => {
  it("takes the union, later dicts winning, keys in order of first appearance", () => {
    const a1 = f32([1]);
    const b1 = f32([2]);
    const b2 = f32([3]);
    const c2 = f32([4]);
    const a3 = f32([5]);
    const merged = mergeStateDicts(
      [
        new Map([
          ["a", a1],
          ["b", b1],
        ]),
        new Map([
          ["c", c2],
          ["b", b2],
        ]),
        new Map([["a", a3]]),
      ],
      { mode: "override" },
    );
    expect([...merged.keys()]).toEqual(["a", "b", "c"]);
    expect(merged.get("a")).toBe(a3);
    expect(merged.get("b")).toBe(b2);
    expect(merged.get("c")).toBe(c2);
    expect(a1.reads + b1.reads + b2.reads + c2.reads + a3.reads).toBe(0);
  });

  it("refuses a key whose shape differs, naming the key, both shapes and the dict", () => {
    const conflict = thrown(() =>
      mergeStateDicts(
        [
          new Map([["head.weight", f32([1, 2, 3, 4, 5, 6], [2, 3])]]),
          new Map([["other", f32([1])]]),
          new Map([["head.weight", f32([1, 2, 3, 4, 5, 6], [3, 2])]]),
        ],
        { mode: "override" },
      ),
    );
    expect(conflict).toBeInstanceOf(MergeConflictError);
    expect((conflict as MergeConflictError).code).toBe("MERGE_SHAPE_CONFLICT");
    expect((conflict as MergeConflictError).key).toBe("head.weight");
    expect(conflict.message).toContain("state dict 0 has float32 [2, 3]");
    expect(conflict.message).toContain("state dict 2 has float32 [3, 2]");
  });

  it("refuses a key whose dtype differs", () => {
    const conflict = thrown(() =>
      mergeStateDicts(
        [
          new Map([["w", f32([1, 2])]]),
          new Map([["w", memoryTensor("float16", [2], Uint16Array.of(0x3c00, 0x4000))]]),
        ],
        { mode: "override" },
      ),
    );
    expect(conflict).toBeInstanceOf(MergeConflictError);
    expect((conflict as MergeConflictError).code).toBe("MERGE_DTYPE_CONFLICT");
    expect(conflict.message).toMatch(
      /state dict 0 has float32 \[2\] but state dict 1 has float16 \[2\]/,
    );
  });

  it("refuses weights, which only averaging uses", () => {
    const error = thrown(() =>
      mergeStateDicts([new Map(), new Map()], { mode: "override", weights: [1, 1] }),
    );
    expect(error).toBeInstanceOf(ConfigError);
  });

  it("refuses an empty list and an unknown mode", () => {
    expect(() => mergeStateDicts([], { mode: "override" })).toThrow(ConfigError);
    const bad = thrown(() =>
      mergeStateDicts([new Map()], { mode: "median" as "average" }),
    ) as ConfigError;
    expect(bad.code).toBe("BAD_MERGE_MODE");
  });
});

describe("mergeStateDicts: average", () => {
  it("reads nothing until read(), then returns Σ wᵢ·xᵢ rounded once to float32", async () => {
    const a = [1.5, -2, 0.1, 1e-3, 3.4e38];
    const b = [2.5, 4, 0.2, 7e-4, 3.4e38];
    const ta = f32(a);
    const tb = f32(b);
    const merged = mergeStateDicts([new Map([["w", ta]]), new Map([["w", tb]])], {
      mode: "average",
      weights: [1, 3],
    });
    const w = merged.get("w")!;
    expect(ta.reads + tb.reads).toBe(0);
    expect(w.dtype).toBe("float32");
    expect(w.shape).toEqual([5]);
    const values = await w.read();
    expect(ta.reads).toBe(1);
    expect(tb.reads).toBe(1);
    expect(values).toBeInstanceOf(Float32Array);
    // The inputs as float32 hold them, then 0.25·a + 0.75·b in float64, rounded to float32.
    const expected = a.map((x, i) =>
      Math.fround(0.25 * Math.fround(x) + 0.75 * Math.fround(b[i]!)),
    );
    expect([...values]).toEqual(expected);
  });

  it("weights equally by default", async () => {
    const inputs = [
      [1, 10],
      [2, 20],
      [4, 41],
    ];
    const merged = mergeStateDicts(
      inputs.map((v) => new Map([["w", f32(v)]])),
      { mode: "average" },
    );
    const third = 1 / 3;
    const expected = [0, 1].map((i) =>
      Math.fround(third * inputs[0]![i]! + third * inputs[1]![i]! + third * inputs[2]![i]!),
    );
    expect([...(await merged.get("w")!.read())]).toEqual(expected);
  });

  it("rounds float16 and bfloat16 once, from the float64 sum", async () => {
    // 1 and 1 + 2^-10 are neighbours in float16; their mean is a tie, which rounds to even (1).
    const half = (bits: number[]) => memoryTensor("float16", [bits.length], Uint16Array.from(bits));
    const merged = mergeStateDicts(
      [new Map([["h", half([0x3c00, 0x3c00])]]), new Map([["h", half([0x3c01, 0x4000])]])],
      { mode: "average" },
    );
    const h = await merged.get("h")!.read();
    expect([...h]).toEqual([
      floatToHalfBits((halfBitsToFloat(0x3c00) + halfBitsToFloat(0x3c01)) / 2),
      0x3e00, // (1 + 2) / 2 = 1.5
    ]);
    expect(h[0]).toBe(0x3c00);

    const brain = (values: number[]) =>
      memoryTensor("bfloat16", [values.length], Uint16Array.from(values, floatToBfloat16Bits));
    const mergedB = mergeStateDicts(
      [new Map([["b", brain([1, -3, 1])]]), new Map([["b", brain([2, 5, 1 + 2 ** -7])]])],
      { mode: "average", weights: [0.25, 0.75] },
    );
    const b = (await mergedB.get("b")!.read()) as Uint16Array;
    expect(Array.from(b.subarray(0, 2), bfloat16BitsToFloat)).toEqual([
      0.25 * 1 + 0.75 * 2,
      0.25 * -3 + 0.75 * 5,
    ]);
    // 1 and 1 + 2^-7 are bfloat16 neighbours; 1 + 0.75·2^-7 is nearer the upper one (0x3f81).
    expect(b[2]).toBe(0x3f81);
  });

  it("converts the rounded result when read as another dtype", async () => {
    const half = (bits: number[]) => memoryTensor("float16", [bits.length], Uint16Array.from(bits));
    const merged = mergeStateDicts(
      [new Map([["h", half([0x3c00])]]), new Map([["h", half([0x3c01])]])],
      { mode: "average" },
    );
    // The tensor is float16: read as float32 it is the rounded half (1), not the exact mean.
    expect([...(await merged.get("h")!.read({ dtype: "float32" }))]).toEqual([1]);
  });

  it("matches PyTorch's float64 accumulation and single rounding for every float dtype", async () => {
    interface Case {
      dtype: DType;
      shape: number[];
      weights: number[];
      inputs: string[][];
      expected: string[];
    }
    const cases = readFixture<Case[]>("averages.json");
    expect(cases.map((c) => c.dtype)).toEqual([
      "float16",
      "float16",
      "bfloat16",
      "bfloat16",
      "float32",
      "float32",
      "float64",
      "float64",
      "complex64",
    ]);
    for (const { dtype, shape, weights, inputs, expected } of cases) {
      const dicts = inputs.map(
        (bits) => new Map([["x", memoryTensor(dtype, shape, fromHexBits(dtype, bits))]]),
      );
      const merged = mergeStateDicts(dicts, { mode: "average", weights });
      const result = await merged.get("x")!.read();
      expect({ dtype, weights, bits: toHexBits(result) }).toEqual({
        dtype,
        weights,
        bits: expected,
      });
    }
  });

  it("keeps a lone input's -0 when the other weights are 0, and never reads those", async () => {
    const used = f32([-0, 1]);
    const unused = f32([Number.NaN, Number.NaN]);
    const merged = mergeStateDicts([new Map([["w", unused]]), new Map([["w", used]])], {
      mode: "average",
      weights: [0, 2],
    });
    const values = await merged.get("w")!.read();
    expect(Object.is(values[0], -0)).toBe(true);
    expect(values[1]).toBe(1);
    expect(unused.reads).toBe(0);
  });

  it("keeps integer and bool tensors that are identical in every dict", async () => {
    const counter = () => memoryTensor("int64", [], BigInt64Array.of(1234n));
    const mask = () => memoryTensor("bool", [3], Uint8Array.of(1, 0, 1));
    const merged = mergeStateDicts(
      [0, 1, 2].map(
        () =>
          new Map<string, TensorLike>([
            ["bn.num_batches_tracked", counter()],
            ["mask", mask()],
          ]),
      ),
      { mode: "average", weights: [1, 2, 3] },
    );
    expect([...(await merged.get("bn.num_batches_tracked")!.read())]).toEqual([1234n]);
    expect([...(await merged.get("mask")!.read())]).toEqual([1, 0, 1]);
  });

  it("refuses to average integers that differ, when read, naming the key and the dicts", async () => {
    const counter = (n: bigint) => memoryTensor("int64", [], BigInt64Array.of(n));
    const merged = mergeStateDicts(
      [
        new Map([["bn.num_batches_tracked", counter(100n)]]),
        new Map([["bn.num_batches_tracked", counter(100n)]]),
        new Map([["bn.num_batches_tracked", counter(250n)]]),
      ],
      { mode: "average" },
    );
    const error = await rejected(merged.get("bn.num_batches_tracked")!.read());
    expect(error).toBeInstanceOf(MergeConflictError);
    expect((error as MergeConflictError).code).toBe("MERGE_UNAVERAGEABLE");
    expect((error as MergeConflictError).key).toBe("bn.num_batches_tracked");
    expect(error.message).toContain("state dicts 0 and 2");
  });

  it("refuses dicts that do not hold the same keys, listing at most 10 per dict", () => {
    const many = Array.from({ length: 13 }, (_, i) => `extra.${i}`);
    const error = thrown(() =>
      mergeStateDicts(
        [
          new Map([["shared", f32([1])], ...many.map((k) => [k, f32([1])] as const)]),
          new Map([["shared", f32([1])]]),
          new Map([
            ["shared", f32([1])],
            ["only.here", f32([1])],
          ]),
        ],
        { mode: "average" },
      ),
    );
    expect(error).toBeInstanceOf(MergeConflictError);
    expect((error as MergeConflictError).code).toBe("MERGE_MISSING_KEYS");
    expect(error.message).toContain(
      `state dict 1 lacks 14: ${many
        .slice(0, 10)
        .map((k) => `'${k}'`)
        .join(", ")}, and 4 more`,
    );
    expect(error.message).toContain(
      `state dict 2 lacks 13: ${many
        .slice(0, 10)
        .map((k) => `'${k}'`)
        .join(", ")}, and 3 more`,
    );
    expect(error.message).toContain(`state dict 0 lacks 1: 'only.here'`);
  });

  it("refuses shape conflicts before reading anything", () => {
    const a = f32([1, 2]);
    const error = thrown(() =>
      mergeStateDicts([new Map([["w", a]]), new Map([["w", f32([1, 2, 3])]])], { mode: "average" }),
    );
    expect((error as MergeConflictError).code).toBe("MERGE_SHAPE_CONFLICT");
    expect(error.message).toContain("state dict 1 has float32 [3]");
    expect(a.reads).toBe(0);
  });

  it.each([
    [[1], "are 1 for 2 state dicts"],
    [[1, -1], "must be finite and non-negative"],
    [[1, Number.NaN], "must be finite and non-negative"],
    [[1, Number.POSITIVE_INFINITY], "must be finite and non-negative"],
    [[0, 0], "sum to zero"],
    [[Number.MAX_VALUE, Number.MAX_VALUE], "overflow"],
  ])("refuses weights %j", (weights, message) => {
    const dicts = [new Map([["w", f32([1])]]), new Map([["w", f32([2])]])];
    const error = thrown(() => mergeStateDicts(dicts, { mode: "average", weights }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("BAD_MERGE_WEIGHTS");
    expect(error.message).toContain(message);
  });

  it("refuses an input whose read returns the wrong number of values", async () => {
    const liar: TensorLike = {
      dtype: "float32",
      shape: [3],
      read: async () => new Float64Array(2),
    };
    const merged = mergeStateDicts([new Map([["w", liar]]), new Map([["w", f32([1, 2, 3])]])], {
      mode: "average",
    });
    const error = await rejected(merged.get("w")!.read());
    expect(error).toBeInstanceOf(TensorError);
    expect(error.message).toContain("state dict 0 gave 2 values for a tensor that has 3");
  });
});
