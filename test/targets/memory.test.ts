import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LoadError, LoadoutError } from "../../src/errors.js";
import {
  type FaultInjection,
  MemoryModel,
  MemoryOptimizer,
  type MemoryParameterSpec,
  MemoryScheduler,
  sameSnapshot,
} from "../../src/targets/memory.js";
import type { OptimizerState, Undo } from "../../src/targets/types.js";

/** A small conv-net-like model: two trainable parameters, a frozen one, two buffers. */
function specs(): MemoryParameterSpec[] {
  return [
    {
      name: "conv.weight",
      shape: [2, 3],
      dtype: "float32",
      value: Float32Array.from([1, 2, 3, 4, 5, 6]),
    },
    { name: "conv.bias", shape: [2], dtype: "float32", value: Float32Array.from([0.5, -0.5]) },
    {
      name: "embed.weight",
      shape: [3],
      dtype: "float16",
      trainable: false,
      value: Uint16Array.from([0x3c00, 0x4000, 0x4200]),
    },
    {
      name: "bn.running_mean",
      shape: [2],
      dtype: "float32",
      kind: "buffer",
      value: Float32Array.from([0, 0]),
    },
    {
      name: "bn.num_batches_tracked",
      shape: [],
      dtype: "int64",
      kind: "buffer",
      value: BigInt64Array.from([7n]),
    },
  ];
}

const model = (faults?: FaultInjection) => new MemoryModel(specs(), { faults });

async function rejects(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toSatisfy((e) => e instanceof LoadoutError && e.code === code);
}

describe("MemoryModel", () => {
  it("describes its parameters in order, buffers never trainable", () => {
    const infos = model().parameters();
    expect(infos.map((p) => [p.name, p.kind, p.trainable, p.dtype, [...p.shape]])).toEqual([
      ["conv.weight", "parameter", true, "float32", [2, 3]],
      ["conv.bias", "parameter", true, "float32", [2]],
      ["embed.weight", "parameter", false, "float16", [3]],
      ["bn.running_mean", "buffer", false, "float32", [2]],
      ["bn.num_batches_tracked", "buffer", false, "int64", []],
    ]);
  });

  it("refuses a trainable buffer, a duplicate name and a value of the wrong size or type", () => {
    const base = { shape: [2], dtype: "float32" as const };
    expect(
      () => new MemoryModel([{ name: "b", ...base, kind: "buffer", trainable: true }]),
    ).toThrow(LoadError);
    expect(
      () =>
        new MemoryModel([
          { name: "a", ...base },
          { name: "a", ...base },
        ]),
    ).toThrow(/declared twice/);
    expect(() => new MemoryModel([{ name: "a", ...base, value: new Float32Array(3) }])).toThrow(
      /Float32Array of 2/,
    );
    expect(() => new MemoryModel([{ name: "a", ...base, value: new Float64Array(2) }])).toThrow(
      /got a Float64Array/,
    );
  });

  it("starts from init() or zeros when no value is given", async () => {
    const m = new MemoryModel([
      { name: "a", shape: [2, 2], dtype: "float32", init: () => Float32Array.from([1, 1, 1, 1]) },
      { name: "b", shape: [3], dtype: "bfloat16" },
      { name: "c", shape: [2], dtype: "complex64" },
    ]);
    expect([...(await m.read("a"))]).toEqual([1, 1, 1, 1]);
    expect(await m.read("b")).toEqual(new Uint16Array(3));
    // complex64 holds real and imaginary parts: two float32 per element.
    expect(await m.read("c")).toEqual(new Float32Array(4));
  });

  it("read() returns a copy", async () => {
    const m = model();
    const value = (await m.read("conv.bias")) as Float32Array;
    value[0] = 99;
    expect([...(await m.read("conv.bias"))]).toEqual([0.5, -0.5]);
    await expect(m.read("nope")).rejects.toThrow(/no parameter 'nope'/);
  });

  it("write() takes the arrays without copying and its Undo puts the old ones back", async () => {
    const m = model();
    const before = m.snapshot();
    const oldBias = m.liveArray("conv.bias");
    const bias = Float32Array.from([3, 4]);
    const count = BigInt64Array.from([8n]);
    const undo = await m.write(
      new Map<string, Float32Array | BigInt64Array>([
        ["conv.bias", bias],
        ["bn.num_batches_tracked", count],
      ]),
    );
    expect(m.liveArray("conv.bias")).toBe(bias);
    expect(m.liveArray("bn.num_batches_tracked")).toBe(count);
    expect(sameSnapshot(before, m.snapshot())).toBe(false);
    await undo();
    expect(m.liveArray("conv.bias")).toBe(oldBias);
    expect(sameSnapshot(before, m.snapshot())).toBe(true);
  });

  it("write() checks every entry before changing any", async () => {
    const m = model();
    const before = m.snapshot();
    const good = Float32Array.from([9, 9]);
    const cases: [Map<string, Float32Array | Float64Array | Uint16Array>, string][] = [
      [
        new Map([
          ["conv.bias", good],
          ["missing", new Float32Array(2)],
        ]),
        "UNKNOWN_PARAMETER",
      ],
      [
        new Map<string, Float32Array | Float64Array>([
          ["conv.bias", good],
          ["conv.weight", new Float64Array(6)],
        ]),
        "BAD_VALUE",
      ],
      [
        new Map([
          ["conv.bias", good],
          ["conv.weight", new Float32Array(5)],
        ]),
        "BAD_VALUE",
      ],
      // float16 is held as raw bits: a Float32Array is the wrong array type.
      [
        new Map([
          ["conv.bias", good],
          ["embed.weight", new Float32Array(3)],
        ]),
        "BAD_VALUE",
      ],
    ];
    for (const [values, code] of cases) {
      await rejects(m.write(values), code);
      expect(sameSnapshot(before, m.snapshot())).toBe(true);
    }
  });

  it("write() refuses arrays that share memory with each other or another parameter", async () => {
    const m = model();
    const before = m.snapshot();
    const pool = new Float32Array(8);
    await rejects(
      m.write(
        new Map([
          ["conv.weight", pool.subarray(0, 6)],
          ["conv.bias", pool.subarray(5, 7)],
        ]),
      ),
      "SHARED_ARRAY",
    );
    await rejects(
      m.write(new Map([["bn.running_mean", m.liveArray("conv.bias") as Float32Array]])),
      "SHARED_ARRAY",
    );
    expect(sameSnapshot(before, m.snapshot())).toBe(true);
    // Disjoint views of one buffer are fine.
    await m.write(
      new Map([
        ["conv.weight", pool.subarray(0, 6)],
        ["conv.bias", pool.subarray(6, 8)],
      ]),
    );
  });

  it("setTrainable() freezes with an Undo, and never makes a buffer trainable", async () => {
    const m = model();
    const before = m.snapshot();
    const undo = await m.setTrainable(["conv.weight", "embed.weight"], false);
    expect(
      m
        .parameters()
        .filter((p) => p.trainable)
        .map((p) => p.name),
    ).toEqual(["conv.bias"]);
    await undo();
    expect(sameSnapshot(before, m.snapshot())).toBe(true);
    await rejects(m.setTrainable(["conv.weight", "bn.running_mean"], true), "TRAINABLE_BUFFER");
    await rejects(m.setTrainable(["conv.weight", "nope"], false), "UNKNOWN_PARAMETER");
    expect(sameSnapshot(before, m.snapshot())).toBe(true);
  });

  it("an Undo runs once: a second call does not undo a later change", async () => {
    const m = model();
    const undo = await m.write(new Map([["conv.bias", Float32Array.from([1, 1])]]));
    await undo();
    const later = Float32Array.from([2, 2]);
    await m.write(new Map([["conv.bias", later]]));
    await undo();
    expect(m.liveArray("conv.bias")).toBe(later);
  });

  it("initialValues() uses each init, else copies the current value", async () => {
    let calls = 0;
    const m = new MemoryModel([
      {
        name: "a",
        shape: [2],
        dtype: "float32",
        value: Float32Array.from([5, 6]),
        init: () => Float32Array.from([calls++, 0]),
      },
      { name: "b", shape: [2], dtype: "float32", value: Float32Array.from([7, 8]) },
    ]);
    const fresh = await m.initialValues(["a", "b"]);
    expect([...fresh.get("a")!]).toEqual([0, 0]);
    expect([...fresh.get("b")!]).toEqual([7, 8]);
    expect(fresh.get("b")).not.toBe(m.liveArray("b"));
    // Not applied: the model keeps its values.
    expect([...(await m.read("a"))]).toEqual([5, 6]);
    const bad = new MemoryModel([
      {
        name: "a",
        shape: [2],
        dtype: "float32",
        value: new Float32Array(2),
        init: () => new Float32Array(3),
      },
    ]);
    await rejects(bad.initialValues(["a"]), "BAD_VALUE");
  });

  it("sameSnapshot() tells values bit for bit (NaN equals itself, -0 differs from 0)", async () => {
    const m = new MemoryModel([
      { name: "a", shape: [2], dtype: "float32", value: Float32Array.from([Number.NaN, 0]) },
    ]);
    const before = m.snapshot();
    const copy = m.snapshot();
    expect(sameSnapshot(before, copy)).toBe(true);
    await m.write(new Map([["a", Float32Array.from([Number.NaN, -0])]]));
    expect(sameSnapshot(before, m.snapshot())).toBe(false);
  });

  it("injected faults fail write and setTrainable before anything changes", async () => {
    const faults = { failOn: (_op: string, name?: string) => name === "conv.bias" };
    const m = model(faults);
    const before = m.snapshot();
    await rejects(
      m.write(
        new Map([
          ["conv.weight", new Float32Array(6)],
          ["conv.bias", new Float32Array(2)],
        ]),
      ),
      "INJECTED_FAULT",
    );
    await rejects(m.setTrainable(["conv.weight", "conv.bias"], false), "INJECTED_FAULT");
    expect(sameSnapshot(before, m.snapshot())).toBe(true);
    // Operations not touching the faulty name go through.
    await m.write(new Map([["conv.weight", new Float32Array(6)]]));
  });

  it("property: any sequence of writes and freezes, some failing, undone in reverse, restores exactly", async () => {
    const names = specs()
      .filter((s) => s.kind !== "buffer" && s.dtype === "float32")
      .map((s) => s.name);
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("write" as const),
        names: fc.subarray(names, { minLength: 1 }),
        seed: fc.integer({ min: -100, max: 100 }),
        badLength: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant("freeze" as const),
        names: fc.subarray(names, { minLength: 1 }),
        trainable: fc.boolean(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { maxLength: 8 }),
        fc.array(fc.boolean(), { maxLength: 8 }),
        async (ops, faultPlan) => {
          let step = 0;
          const m = model({
            failOn: (_op, name) => name === undefined && faultPlan[step] === true,
          });
          const initial = m.snapshot();
          const undos: Undo[] = [];
          for (const o of ops) {
            const before = m.snapshot();
            try {
              if (o.kind === "write") {
                const sizes = new Map(
                  m.parameters().map((p) => [p.name, p.shape.reduce((a, b) => a * b, 1)]),
                );
                const values = new Map(
                  o.names.map((n, i) => [
                    n,
                    Float32Array.from(
                      { length: sizes.get(n)! + (o.badLength && i === 0 ? 1 : 0) },
                      (_, k) => o.seed + k,
                    ),
                  ]),
                );
                undos.push(await m.write(values));
              } else {
                undos.push(await m.setTrainable(o.names, o.trainable));
              }
            } catch (error) {
              expect(error).toBeInstanceOf(LoadError);
              expect(sameSnapshot(before, m.snapshot())).toBe(true);
            }
            step++;
          }
          for (const undo of undos.reverse()) await undo();
          expect(sameSnapshot(initial, m.snapshot())).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("MemoryOptimizer", () => {
  const params = model().parameters();
  const groups = [
    {
      params: ["conv.weight", "conv.bias"],
      hyper: { lr: 0.001, betas: [0.9, 0.999], amsgrad: false, foreach: null },
    },
  ];
  const state = (): OptimizerState => ({
    type: "AdamW",
    groups: [
      {
        params: ["conv.weight", "conv.bias", "embed.weight"],
        hyper: { lr: 0.0005, betas: [0.9, 0.95] },
      },
    ],
    state: new Map([
      [
        "conv.weight",
        {
          scalars: { step: 3 },
          tensors: new Map([
            ["exp_avg", new Float32Array(6).fill(0.1)],
            ["exp_avg_sq", new Float32Array(6)],
          ]),
        },
      ],
      [
        "conv.bias",
        { scalars: { step: 3 }, tensors: new Map([["exp_avg", Float32Array.from([1, 2])]]) },
      ],
    ]),
  });

  it("starts empty with its hyperparameters, and setState/Undo swap whole states", async () => {
    const opt = new MemoryOptimizer("AdamW", groups, { params });
    const initial = opt.getState();
    expect(initial).toEqual({ type: "AdamW", groups, state: new Map() });
    const undo = await opt.setState(state());
    expect(opt.getState()).toEqual(state());
    await undo();
    expect(opt.getState()).toEqual(initial);
  });

  it("getState() is a deep copy", async () => {
    const opt = new MemoryOptimizer("AdamW", groups, { params });
    await opt.setState(state());
    const copy = opt.getState();
    (copy.state.get("conv.bias")!.tensors.get("exp_avg") as Float32Array)[0] = 42;
    copy.groups[0]!.hyper.lr = 1;
    (copy.groups[0]!.hyper.betas as number[])[0] = 0;
    expect(opt.getState()).toEqual(state());
  });

  it("reset() empties the state, keeps the constructed hyperparameters, and undoes", async () => {
    const opt = new MemoryOptimizer("AdamW", groups, { params });
    await opt.setState(state());
    const loaded = opt.getState();
    const undo = await opt.reset();
    expect(opt.getState()).toEqual({ type: "AdamW", groups, state: new Map() });
    await undo();
    expect(opt.getState()).toEqual(loaded);
  });

  it("setState() refuses a bad state before changing anything", async () => {
    const opt = new MemoryOptimizer("AdamW", groups, { params });
    await opt.setState(state());
    const before = opt.getState();
    const unknownInGroup = state();
    unknownInGroup.groups[0]!.params.push("decoder.weight");
    const unknownInState = state();
    unknownInState.state.set("decoder.weight", { scalars: {}, tensors: new Map() });
    const wrongLength = state();
    wrongLength.state.get("conv.bias")!.tensors.set("exp_avg_sq", new Float32Array(3));
    const ungrouped = state();
    ungrouped.groups[0]!.params = ["conv.weight"];
    const twice = state();
    twice.groups.push({ params: ["conv.bias"], hyper: {} });
    for (const [bad, code] of [
      [unknownInGroup, "UNKNOWN_PARAMETER"],
      [unknownInState, "UNKNOWN_PARAMETER"],
      [wrongLength, "OPTIMIZER_BAD_STATE"],
      [ungrouped, "OPTIMIZER_BAD_STATE"],
      [twice, "OPTIMIZER_BAD_STATE"],
    ] as const) {
      await rejects(opt.setState(bad), code);
      expect(opt.getState()).toEqual(before);
    }
  });

  it("refuses construction with groups naming unknown parameters", () => {
    expect(() => new MemoryOptimizer("SGD", [{ params: ["nope"], hyper: {} }], { params })).toThrow(
      LoadError,
    );
  });

  it("injected faults fail setState and reset before anything changes", async () => {
    const opt = new MemoryOptimizer("AdamW", groups, {
      params,
      faults: {
        failOn: (op, name) => (op === "setState" && name === "conv.bias") || op === "reset",
      },
    });
    const initial = opt.getState();
    await rejects(opt.setState(state()), "INJECTED_FAULT");
    await rejects(opt.reset(), "INJECTED_FAULT");
    expect(opt.getState()).toEqual(initial);
  });
});

describe("MemoryScheduler", () => {
  // StepLR(step_size=2, gamma=0.5).state_dict() after one step, as PyTorch 2.13 gives it.
  const stepLR = () => ({
    step_size: 2,
    gamma: 0.5,
    base_lrs: [0.001],
    last_epoch: 1,
    _step_count: 2,
    _is_initial: false,
    _get_lr_called_within_step: false,
    _last_lr: [0.001],
  });
  const initial = () => ({ ...stepLR(), last_epoch: 0, _step_count: 1, _is_initial: true });

  it("deep-copies states in and out; setState, reset and their Undos", async () => {
    const given = initial();
    const s = new MemoryScheduler("StepLR", given);
    given.base_lrs[0] = 5;
    expect(s.getState()).toEqual(initial());
    (s.getState().base_lrs as number[])[0] = 7;
    expect(s.getState()).toEqual(initial());

    const undoSet = await s.setState(stepLR());
    expect(s.getState()).toEqual(stepLR());
    const undoReset = await s.reset();
    expect(s.getState()).toEqual(initial());
    await undoReset();
    expect(s.getState()).toEqual(stepLR());
    await undoSet();
    expect(s.getState()).toEqual(initial());
  });

  it("keeps non-finite numbers (ReduceLROnPlateau's best starts at inf)", async () => {
    const s = new MemoryScheduler("ReduceLROnPlateau", {
      best: Number.POSITIVE_INFINITY,
      mode: "min",
    });
    expect(s.getState().best).toBe(Number.POSITIVE_INFINITY);
  });

  it("refuses state that is not plain data, or contains itself, before changing anything", async () => {
    const s = new MemoryScheduler("StepLR", initial());
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    await rejects(s.setState({ when: new Date(0) }), "NOT_PLAIN_DATA");
    await rejects(s.setState({ f: () => 1 }), "NOT_PLAIN_DATA");
    await rejects(s.setState({ n: 1n }), "NOT_PLAIN_DATA");
    await rejects(s.setState(cyclic), "CYCLIC_VALUE");
    expect(s.getState()).toEqual(initial());
  });

  it("shared (non-cyclic) references are copied, not refused", async () => {
    const lrs = [0.1];
    const s = new MemoryScheduler("X", { base_lrs: lrs, _last_lr: lrs });
    expect(s.getState()).toEqual({ base_lrs: [0.1], _last_lr: [0.1] });
  });

  it("injected faults fail setState and reset before anything changes", async () => {
    const s = new MemoryScheduler("StepLR", initial(), {
      faults: { failOn: (op) => op === "setState" || op === "reset" },
    });
    await rejects(s.setState(stepLR()), "INJECTED_FAULT");
    await rejects(s.reset(), "INJECTED_FAULT");
    expect(s.getState()).toEqual(initial());
  });
});
