import { describe, expect, it } from "vitest";
import { AmbiguousKeyError } from "../../src/errors.js";
import { planLoad } from "../../src/pipeline/load.js";
import { MemoryModel } from "../../src/targets/memory.js";
import type { DType } from "../../src/tensors/dtype.js";
import {
  expected,
  load,
  loading,
  rejection,
  sourceCheckpoint,
  sourceValue,
  stateDictCheckpoint,
  TINY,
  targetValue,
  tinyTargets,
  valuesOf,
} from "./helpers.js";

/** The rules every strategy shares: include/exclude, key_map, dtype conversion. */

describe("include and exclude", () => {
  it("include keeps only matching checkpoint keys (globs and dotted prefixes)", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const { report } = await load(
      checkpoint,
      targets,
      loading("transfer_learning", { include: ["enc.*", "bn"] }),
    );
    const plan = report.plan!;
    expect(plan.entries.map((e) => [e.target, e.action])).toEqual(
      TINY.map((d) => [d.name, d.name.startsWith("dec.") ? "skip" : "load"]),
    );
    expect(plan.entries.at(-1)!.reason).toBe("excluded by include/exclude");
    expect(await valuesOf(targets, "dec.bias")).toEqual(expected("dec.bias", [2], targetValue));
    expect(await valuesOf(targets, "enc.bias")).toEqual(expected("enc.bias", [3], sourceValue));
  });

  it("exclude under strict skips the excluded without a violation", async () => {
    const { checkpoint } = sourceCheckpoint({
      decls: [...TINY, { name: "aux.weight", shape: [2], dtype: "float32", kind: "parameter" }],
    });
    const targets = await tinyTargets();
    const { report } = await load(
      checkpoint,
      targets,
      loading("weights_only", { exclude: ["dec", "aux.*"] }),
    );
    const plan = report.plan!;
    expect(plan.violations).toEqual([]);
    expect(plan.entries.filter((e) => e.action === "skip").map((e) => e.target)).toEqual([
      "dec.weight",
      "dec.bias",
    ]);
    expect(plan.unexpected).toEqual([
      { source: "aux.weight", shape: [2], dtype: "float32", reason: "excluded by include/exclude" },
    ]);
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [2, 3], targetValue),
    );
  });

  it("patterns are matched against the checkpoint's own keys, prefixes included", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const plan = await planLoad({
      checkpoint,
      targets,
      config: loading("transfer_learning", { exclude: ["model.dec"] }),
    });
    expect(plan.entries.filter((e) => e.action === "skip").map((e) => e.source)).toEqual([
      "model.dec.weight",
      "model.dec.bias",
    ]);
  });

  it("an include or exclude pattern that matches no key is an error", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const plan = await planLoad({
      checkpoint,
      targets,
      config: loading("transfer_learning", { include: ["enc", "encoder.*"], exclude: ["head"] }),
    });
    expect(plan.violations).toEqual([
      "include pattern 'encoder.*' matches no key of the checkpoint",
      "exclude pattern 'head' matches no key of the checkpoint",
    ]);
  });
});

describe("key_map", () => {
  const renamed = TINY.map((d) => ({ ...d, name: d.name.replace(/^enc\./, "encoder.") }));

  it("renames checkpoint keys before matching", async () => {
    const { checkpoint } = sourceCheckpoint({ decls: renamed });
    const targets = await tinyTargets();
    const { report } = await load(
      checkpoint,
      targets,
      loading("weights_only", { key_map: [{ pattern: "^encoder\\.", replacement: "enc." }] }),
    );
    const plan = report.plan!;
    expect(plan.entries.slice(0, 2).map((e) => [e.target, e.source, e.action])).toEqual([
      ["enc.weight", "encoder.weight", "load"],
      ["enc.bias", "encoder.bias", "load"],
    ]);
    expect(await valuesOf(targets, "enc.weight")).toEqual(
      expected("encoder.weight", [3, 2], sourceValue),
    );
  });

  it("the mapping form with a capture group works the same", async () => {
    const { checkpoint } = sourceCheckpoint({ decls: renamed });
    const targets = await tinyTargets();
    const plan = await planLoad({
      checkpoint,
      targets,
      config: loading("weights_only", { key_map: { "^encoder\\.(\\w+)$": "enc.$1" } }),
    });
    expect(plan.violations).toEqual([]);
    expect(plan.entries[1]).toMatchObject({ target: "enc.bias", source: "encoder.bias" });
  });

  it("without it, a module renamed as a whole is still found, and the plan says how", async () => {
    const { checkpoint } = sourceCheckpoint({ decls: renamed });
    const targets = await tinyTargets();
    const plan = await planLoad({ checkpoint, targets, config: loading("weights_only") });
    expect(plan.keyTransforms).toEqual([{ from: "encoder.", to: "enc.", count: 2 }]);
    expect(plan.entries[0]).toMatchObject({ target: "enc.weight", source: "encoder.weight" });
    expect(plan.violations).toEqual([]);
  });

  it("two keys renamed to one name is an error naming both", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const error = await rejection(
      planLoad({
        checkpoint,
        targets,
        config: loading("weights_only", {
          key_map: [{ pattern: "^(enc|dec)\\.", replacement: "x." }],
        }),
      }),
    );
    expect(error).toBeInstanceOf(AmbiguousKeyError);
    expect(error.message).toContain("'enc.weight' and 'dec.weight'");
  });
});

describe("dtype conversion on load", () => {
  /** The float32 that `bits` (a float32 bit pattern) stands for. */
  const f32FromBits = (bits: number) => {
    const view = new DataView(new ArrayBuffer(4));
    view.setUint32(0, bits >>> 0);
    return view.getFloat32(0);
  };
  const bitsOfF32 = (values: ArrayLike<number>) =>
    Array.from(new Uint32Array(Float32Array.from(values).buffer));

  // IEEE binary16 patterns and their values: sign, 5-bit exponent (bias 15), 10-bit fraction.
  const HALF: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 1365 / 4096], // 2^-2 * (1 + 341/1024)
    [0x0001, 2 ** -24], // smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0400, 2 ** -14], // smallest normal
    [0x7bff, 65504], // largest finite
    [0x7c00, Number.POSITIVE_INFINITY],
    [0xfc00, Number.NEGATIVE_INFINITY],
    [0x8000, -0],
    [0x7e00, Number.NaN],
  ];
  // bfloat16 is the top half of a float32: its value is the float32 with bits << 16.
  const BF16 = [0x3f80, 0xc040, 0x3eab, 0x0001, 0x7f7f, 0x7f80, 0xff80, 0x8000, 0x7fc1, 0xffc0];
  // float64 → float32 rounds to nearest, ties to even.
  const F64: [number, number][] = [
    [1 / 3, 0.3333333432674408],
    [-2 / 3, -0.6666666865348816],
    [Math.PI, 3.1415927410125732],
    [2 ** -149, 2 ** -149], // smallest float32 subnormal: exact
    [2 ** -150, 0], // half of it: a tie, rounds to the even 0
    [3 * 2 ** -150, 2 ** -148], // 1.5 ulp: a tie, rounds to the even 2 ulp
    [1 + 2 ** -24, 1], // tie between 1 and 1 + 2^-23: even is 1
    [1 + 3 * 2 ** -24, 1 + 2 ** -22], // tie: even is 1 + 2^-22
    [1e39, Number.POSITIVE_INFINITY],
    [-0, -0],
  ];
  // float32 → float16 bits, ties to even.
  const TO_HALF: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [1 + 2 ** -11, 0x3c00], // tie: 1 is even
    [1 + 3 * 2 ** -11, 0x3c02], // tie: 1 + 2^-9 is even
    [65520, 0x7c00], // halfway past the largest finite: infinity
    [2 ** -25, 0x0000], // half the smallest subnormal: even 0
    [3 * 2 ** -25, 0x0002], // 1.5 subnormal ulps: even 2
  ];
  // float32 → bfloat16 bits, ties to even.
  const TO_BF16: [number, number][] = [
    [1, 0x3f80],
    [-3, 0xc040],
    [1 + 2 ** -8, 0x3f80], // tie: even
    [1 + 3 * 2 ** -8, 0x3f82], // tie: even
  ];

  const tensors = [
    { key: "f64", values: F64.map(([v]) => v), shape: [F64.length], dtype: "float64" as DType },
    { key: "f16", values: HALF.map(([b]) => b), shape: [HALF.length], dtype: "float16" as DType },
    { key: "bf16", values: BF16, shape: [BF16.length], dtype: "bfloat16" as DType },
    {
      key: "to_f16",
      values: TO_HALF.map(([v]) => v),
      shape: [TO_HALF.length],
      dtype: "float32" as DType,
    },
    {
      key: "to_bf16",
      values: TO_BF16.map(([v]) => v),
      shape: [TO_BF16.length],
      dtype: "float32" as DType,
    },
  ];
  const model = () =>
    new MemoryModel([
      { name: "f64", shape: [F64.length], dtype: "float32" },
      { name: "f16", shape: [HALF.length], dtype: "float32" },
      { name: "bf16", shape: [BF16.length], dtype: "float32" },
      { name: "to_f16", shape: [TO_HALF.length], dtype: "float16" },
      { name: "to_bf16", shape: [TO_BF16.length], dtype: "bfloat16" },
    ]);

  for (const mode of ["transactional", "in_place"] as const) {
    it(`converts as planned (${mode}): values by arithmetic on the source's bits`, async () => {
      const { checkpoint } = stateDictCheckpoint(tensors);
      const targets = { model: model() };
      const { report } = await load(checkpoint, targets, loading("weights_only", { mode }));

      expect(report.plan!.entries.map((e) => [e.target, e.conversion])).toEqual([
        ["f64", { from: "float64", to: "float32", lossy: true }],
        ["f16", { from: "float16", to: "float32", lossy: false }],
        ["bf16", { from: "bfloat16", to: "float32", lossy: false }],
        ["to_f16", { from: "float32", to: "float16", lossy: true }],
        ["to_bf16", { from: "float32", to: "bfloat16", lossy: true }],
      ]);

      const f64 = await valuesOf(targets, "f64");
      expect(f64).toEqual(F64.map(([, v]) => v));
      expect(Object.is(f64.at(-1), -0)).toBe(true);

      const f16 = await valuesOf(targets, "f16");
      expect(f16).toEqual(HALF.map(([, v]) => v));
      expect(Object.is(f16[9], -0)).toBe(true);

      // Bit for bit: a NaN keeps its payload, -0 its sign.
      expect(bitsOfF32(await valuesOf(targets, "bf16"))).toEqual(BF16.map((b) => (b << 16) >>> 0));
      expect((await valuesOf(targets, "bf16")).slice(0, 3)).toEqual(
        BF16.slice(0, 3).map((b) => f32FromBits(b << 16)),
      );

      expect(await valuesOf(targets, "to_f16")).toEqual(TO_HALF.map(([, b]) => b));
      expect(await valuesOf(targets, "to_bf16")).toEqual(TO_BF16.map(([, b]) => b));
    });
  }

  it("a dtype that cannot convert is a violation naming both dtypes", async () => {
    const { checkpoint } = stateDictCheckpoint([
      { key: "w", values: [0x38, 0x40], shape: [2], dtype: "float8_e4m3fn" },
    ]);
    const targets = { model: new MemoryModel([{ name: "w", shape: [2], dtype: "float32" }]) };
    const plan = await planLoad({ checkpoint, targets, config: loading("transfer_learning") });
    expect(plan.entries[0]).toMatchObject({
      action: "skip",
      reason: "cannot convert float8_e4m3fn to float32",
    });
    expect(plan.violations).toEqual([
      "'w' is float8_e4m3fn, which cannot be converted to the model's float32",
    ]);
  });

  it("integers load into a float model exactly when they fit its mantissa", async () => {
    const { checkpoint } = stateDictCheckpoint([
      { key: "i", values: [-3n, 0n, 2n ** 24n, 2n ** 24n + 1n], shape: [4], dtype: "int64" },
    ]);
    const targets = { model: new MemoryModel([{ name: "i", shape: [4], dtype: "float32" }]) };
    const { report } = await load(checkpoint, targets, loading("weights_only"));
    expect(report.plan!.entries[0]!.conversion).toEqual({
      from: "int64",
      to: "float32",
      lossy: true,
    });
    // 2^24 + 1 is the first integer float32 cannot hold: it rounds to the even 2^24.
    expect(await valuesOf(targets, "i")).toEqual([-3, 0, 2 ** 24, 2 ** 24]);
  });
});
