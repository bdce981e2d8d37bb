import { describe, expect, it } from "vitest";
import { ConfigError, LoadError } from "../../../src/errors.js";
import {
  type ChainableLrScheduler,
  COMMON_FIELDS,
  createCosineAnnealingLR,
  createExponentialLR,
  createLinearLR,
  createLrGroups,
  createMultiStepLR,
  createSequentialLR,
  createStepLR,
  type LrScheduler,
  OWN_FIELDS,
  recogniseSchedulerType,
  schedulerFromState,
  schedulerTarget,
} from "../../../src/tfjs/schedulers/index.js";
import { readJson } from "./helpers.js";

/** torch's state_dict() after 3 steps of each scheduler (test/fixtures/torch/schedulers.json). */
const torchStates = Object.fromEntries(
  readJson<{ schedulers: { name: string; stateDictAfter3Steps: Record<string, unknown> }[] }>(
    "../../fixtures/torch/schedulers.json",
  ).schedulers.map((s) => [s.name, s.stateDictAfter3Steps]),
);
const stateOf = (name: string): Record<string, unknown> => structuredClone(torchStates[name]!);

/** The error `run` throws, checked to be a `type` with `code` and `key`. */
function caught(run: () => unknown, type: typeof LoadError | typeof ConfigError) {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as LoadError;
  }
  throw new Error("expected an error");
}

function expectLoadError(run: () => unknown, code: string, key: string) {
  const error = caught(run, LoadError);
  expect({ code: error.code, key: error.key }).toEqual({ code, key });
  expect(error.message).toContain(key === "" ? "" : key);
  return error;
}

function expectConfigError(run: () => unknown, code: string, key: string) {
  const error = caught(run, ConfigError);
  expect({ code: error.code, key: error.key }).toEqual({ code, key });
}

/** Every kind, stepped 3 times from base rate 0.1 as in schedulers.json. */
const makers: Record<string, () => LrScheduler> = {
  StepLR: () => createStepLR([0.1], { stepSize: 2, gamma: 0.5 }),
  MultiStepLR: () => createMultiStepLR([0.1], { milestones: [2, 4], gamma: 0.1 }),
  ExponentialLR: () => createExponentialLR([0.1], { gamma: 0.9 }),
  CosineAnnealingLR: () => createCosineAnnealingLR([0.1], { tMax: 5, etaMin: 0.001 }),
  LinearLR: () => createLinearLR([0.1], { startFactor: 0.1, totalIters: 3 }),
  SequentialLR: () => {
    const groups = createLrGroups([0.1]);
    return createSequentialLR(
      [
        createLinearLR(groups, { startFactor: 0.1, totalIters: 3 }),
        createCosineAnnealingLR(groups, { tMax: 5, etaMin: 0.001 }),
      ],
      [3],
    );
  },
};

describe("recogniseSchedulerType", () => {
  it("recognises each torch state by its own fields", () => {
    for (const name of Object.keys(torchStates)) {
      expect(recogniseSchedulerType(stateOf(name))).toBe(name);
    }
  });

  it("can never find two types: no two types have the same own fields", () => {
    const sets = Object.values(OWN_FIELDS).map((fields) => [...fields].sort().join(","));
    expect(new Set(sets).size).toBe(sets.length);
    for (const fields of Object.values(OWN_FIELDS)) {
      for (const field of fields) expect(COMMON_FIELDS.has(field)).toBe(false);
    }
  });

  it("names torch schedulers loadout does not implement (fields as torch 2.13 saves them)", () => {
    const common = {
      base_lrs: [0.1],
      last_epoch: 0,
      _step_count: 1,
      _is_initial: false,
      _get_lr_called_within_step: false,
      _last_lr: [0.1],
    };
    const states: [Record<string, unknown>, string][] = [
      [{ factor: 1 / 3, total_iters: 5, ...common }, "ConstantLR"],
      [{ total_iters: 5, power: 1.0, ...common }, "PolynomialLR"],
      [{ ...common, lr_lambdas: [null] }, "LambdaLR or MultiplicativeLR"],
      [
        { T_0: 5, T_i: 5, T_mult: 1, eta_min: 0, T_cur: 0, ...common },
        "CosineAnnealingWarmRestarts",
      ],
      [{ _last_lr: [0.1], _schedulers: [] }, "ChainedScheduler"],
      [
        {
          factor: 0.1,
          default_min_lr: 0,
          min_lrs: [0],
          patience: 10,
          last_epoch: 0,
          _last_lr: [0.1],
        },
        "ReduceLROnPlateau",
      ],
    ];
    for (const [state, name] of states) {
      const error = expectLoadError(
        () => recogniseSchedulerType(state),
        "UNSUPPORTED_SCHEDULER",
        "",
      );
      expect(error.message).toContain(`torch ${name}'s`);
    }
  });

  it("names the extra or missing field of a near miss, and refuses what fits nothing", () => {
    const extra = { ...stateOf("StepLR"), warmup: 3 };
    expectLoadError(() => recogniseSchedulerType(extra), "UNKNOWN_SCHEDULER_FIELD", "warmup");
    const { gamma: _, ...noGamma } = stateOf("StepLR");
    expectLoadError(() => recogniseSchedulerType(noGamma), "MISSING_SCHEDULER_FIELD", "gamma");
    expectLoadError(
      () => recogniseSchedulerType({ last_epoch: 3 }),
      "UNRECOGNISED_SCHEDULER_STATE",
      "",
    );
    expectLoadError(() => recogniseSchedulerType([1, 2]), "BAD_SCHEDULER_STATE", "");
    expectLoadError(() => recogniseSchedulerType(null, "sched"), "BAD_SCHEDULER_STATE", "sched");
  });

  it("treats a '__proto__' key from a file as an unknown field", () => {
    const state = JSON.parse(
      `{"__proto__": {"gamma": 1}, ${JSON.stringify(stateOf("ExponentialLR")).slice(1)}`,
    );
    expectLoadError(() => recogniseSchedulerType(state), "UNKNOWN_SCHEDULER_FIELD", "__proto__");
  });
});

describe("loadStateDict checks every field before changing anything", () => {
  const bad: [string, (s: Record<string, unknown>) => void, string, string][] = [
    ["StepLR", (s) => (s.step_size = 0), "BAD_SCHEDULER_FIELD", "step_size"],
    ["StepLR", (s) => (s.gamma = "0.5"), "BAD_SCHEDULER_FIELD", "gamma"],
    ["StepLR", (s) => (s.base_lrs = [0.1, 0.1]), "SCHEDULER_GROUP_COUNT", "base_lrs"],
    ["StepLR", (s) => (s._last_lr = [Number.NaN]), "BAD_SCHEDULER_FIELD", "_last_lr[0]"],
    ["StepLR", (s) => (s.last_epoch = 2.5), "BAD_SCHEDULER_FIELD", "last_epoch"],
    ["StepLR", (s) => (s.last_epoch = -2), "BAD_SCHEDULER_FIELD", "last_epoch"],
    ["StepLR", (s) => delete s._step_count, "MISSING_SCHEDULER_FIELD", "_step_count"],
    ["StepLR", (s) => (s._is_initial = 0), "BAD_SCHEDULER_FIELD", "_is_initial"],
    ["StepLR", (s) => (s.verbose = "False"), "BAD_SCHEDULER_FIELD", "verbose"],
    ["MultiStepLR", (s) => (s.milestones = [2, 4]), "BAD_SCHEDULER_FIELD", "milestones"],
    ["MultiStepLR", (s) => (s.milestones = { "2.0": 1 }), "BAD_SCHEDULER_FIELD", "milestones[2.0]"],
    ["MultiStepLR", (s) => (s.milestones = { 2: 0 }), "BAD_SCHEDULER_FIELD", "milestones[2]"],
    ["CosineAnnealingLR", (s) => (s.T_max = 0), "BAD_SCHEDULER_FIELD", "T_max"],
    ["LinearLR", (s) => (s.start_factor = 0), "BAD_SCHEDULER_FIELD", "start_factor"],
    ["LinearLR", (s) => (s.end_factor = 1.5), "BAD_SCHEDULER_FIELD", "end_factor"],
    ["SequentialLR", (s) => (s._milestones = [3, 5]), "BAD_SCHEDULER_FIELD", "_milestones"],
    ["SequentialLR", (s) => (s.base_lrs = [0.1]), "UNKNOWN_SCHEDULER_FIELD", "base_lrs"],
    ["SequentialLR", (s) => delete s._last_lr, "MISSING_SCHEDULER_FIELD", "_last_lr"],
    [
      "SequentialLR",
      (s) => ((s._schedulers as Record<string, unknown>[])[1]!.T_max = "5"),
      "BAD_SCHEDULER_FIELD",
      "_schedulers[1].T_max",
    ],
    [
      "SequentialLR",
      (s) => ((s._schedulers as Record<string, unknown>[])[0] = stateOf("StepLR")),
      "SCHEDULER_TYPE_MISMATCH",
      "_schedulers[0]",
    ],
  ];

  it.each(bad)("%s: %s -> %s at %s", (name, spoil, code, key) => {
    const scheduler = makers[name]!();
    scheduler.step();
    const before = scheduler.stateDict();
    const rates = [...scheduler.groups.lr];
    const state = stateOf(name);
    spoil(state);
    expectLoadError(() => scheduler.loadStateDict(state), code, key);
    expect(scheduler.stateDict()).toEqual(before);
    expect(scheduler.groups.lr).toEqual(rates);
  });

  it("says when a whole number was too large to read exactly", () => {
    const state = { ...stateOf("StepLR"), last_epoch: "9007199254740993" };
    const error = expectLoadError(
      () => makers.StepLR!().loadStateDict(state),
      "BAD_SCHEDULER_FIELD",
      "last_epoch",
    );
    expect(error.hint).toContain("2^53");
  });

  it("refuses another type's state, naming both", () => {
    const error = expectLoadError(
      () => makers.StepLR!().loadStateDict(stateOf("ExponentialLR")),
      "SCHEDULER_TYPE_MISMATCH",
      "",
    );
    expect(error.message).toContain("ExponentialLR");
    expect(error.message).toContain("StepLR");
    expectLoadError(
      () => makers.SequentialLR!().loadStateDict(stateOf("LinearLR")),
      "SCHEDULER_TYPE_MISMATCH",
      "",
    );
  });

  it("takes milestones as a Map too, and writes them as torch's Counter reads back", () => {
    const scheduler = makers.MultiStepLR!();
    scheduler.loadStateDict({ ...stateOf("MultiStepLR"), milestones: new Map([[3, 2]]) });
    expect(scheduler.stateDict().milestones).toEqual({ "3": 2 });
    scheduler.step(); // epoch 4
    expect(scheduler.getLastLr()).toEqual([0.010000000000000002]);
    scheduler.loadStateDict({
      ...stateOf("MultiStepLR"),
      milestones: new Map([[3, 2]]),
      last_epoch: 2,
    });
    scheduler.step(); // epoch 3 is a milestone listed twice: times 0.1 ** 2 (Python: 0.010000000000000002)
    expect(scheduler.getLastLr()).toEqual([0.010000000000000002 * 0.010000000000000002]);
  });

  it("keeps a loaded `verbose` (PyTorch before 2.7) and writes it back last", () => {
    const scheduler = makers.ExponentialLR!();
    scheduler.loadStateDict({ ...stateOf("ExponentialLR"), verbose: false });
    expect(Object.keys(scheduler.stateDict()).at(-1)).toBe("verbose");
    scheduler.reset();
    expect(scheduler.stateDict()).not.toHaveProperty("verbose");
  });
});

describe("construction", () => {
  it("refuses bad options with a ConfigError naming the option", () => {
    expectConfigError(
      () => createStepLR([0.1], { stepSize: 0 }),
      "BAD_SCHEDULER_FIELD",
      "stepSize",
    );
    expectConfigError(
      () => createCosineAnnealingLR([0.1], { tMax: 5, etaMin: Number.NaN }),
      "BAD_SCHEDULER_FIELD",
      "etaMin",
    );
    expectConfigError(
      () => createLinearLR([0.1], { startFactor: 0 }),
      "BAD_SCHEDULER_FIELD",
      "startFactor",
    );
    expectConfigError(
      () => createMultiStepLR([0.1], { milestones: [1, 2.5] }),
      "BAD_SCHEDULER_FIELD",
      "milestones[1]",
    );
    expectConfigError(
      () => createExponentialLR([], { gamma: 0.9 }),
      "BAD_SCHEDULER_OPTION",
      "baseLrs",
    );
    expectConfigError(
      () => createExponentialLR([0.1, Number.POSITIVE_INFINITY], { gamma: 0.9 }),
      "BAD_SCHEDULER_FIELD",
      "baseLrs[1]",
    );
  });

  it("refuses SequentialLRs over other groups, of the wrong milestone count, or nested", () => {
    const groups = createLrGroups([0.1]);
    const a = createExponentialLR(groups, { gamma: 0.9 });
    const elsewhere = createExponentialLR([0.1], { gamma: 0.9 });
    expectConfigError(
      () => createSequentialLR([a, elsewhere], [2]),
      "BAD_SCHEDULER_OPTION",
      "schedulers[1]",
    );
    expectConfigError(() => createSequentialLR([a, a], []), "BAD_SCHEDULER_OPTION", "milestones");
    expectConfigError(() => createSequentialLR([], []), "BAD_SCHEDULER_OPTION", "schedulers");
    const inner = createSequentialLR([a], []);
    expectConfigError(
      () => createSequentialLR([a, inner], [2]),
      "BAD_SCHEDULER_OPTION",
      "schedulers[1]",
    );
  });

  it("refuses a nested SequentialLR state in schedulerFromState", () => {
    const state = stateOf("SequentialLR");
    (state._schedulers as unknown[])[1] = stateOf("SequentialLR");
    expectLoadError(() => schedulerFromState(state), "UNSUPPORTED_SCHEDULER", "_schedulers[1]");
  });

  it("keeps the groups' lengths fixed and shares them between a SequentialLR's schedulers", () => {
    const groups = createLrGroups([0.1, 0.2]);
    expect(() => groups.lr.push(1)).toThrow(TypeError);
    const first = createLinearLR(groups, { startFactor: 0.5, totalIters: 2 });
    const sequential = createSequentialLR(
      [first, createExponentialLR(groups, { gamma: 0.5 })],
      [1],
    );
    expect(sequential.groups).toBe(groups);
    expect(groups.lr).toEqual([0.05, 0.1]);
    expect(groups.initialLr).toEqual([0.1, 0.2]);
  });

  it("jumps only to whole epochs >= 0", () => {
    const scheduler = makers.StepLR!() as ChainableLrScheduler;
    expectConfigError(() => scheduler.jumpTo(-1), "BAD_SCHEDULER_FIELD", "epoch");
  });
});

describe("reset", () => {
  it.each(Object.keys(makers))(
    "%s goes back to the constructor's state after steps and loads",
    (name) => {
      const fresh = makers[name]!();
      const scheduler = makers[name]!();
      for (let i = 0; i < 4; i++) scheduler.step();
      scheduler.loadStateDict(stateOf(name));
      scheduler.reset();
      expect(scheduler.stateDict()).toEqual(fresh.stateDict());
      expect(scheduler.groups.lr).toEqual(fresh.groups.lr);
      scheduler.step();
      fresh.step();
      expect(scheduler.getLastLr()).toEqual(fresh.getLastLr());
    },
  );

  it("restores hyperparameters a loaded state changed", () => {
    const scheduler = createStepLR([0.1], { stepSize: 2, gamma: 0.5 });
    scheduler.loadStateDict({ ...stateOf("StepLR"), step_size: 7, gamma: 0.25 });
    scheduler.reset();
    expect(scheduler.stateDict()).toMatchObject({ step_size: 2, gamma: 0.5 });
  });
});

describe("schedulerTarget", () => {
  it.each(Object.keys(makers))(
    "%s: setState loads, its Undo restores exactly, once",
    async (name) => {
      const scheduler = makers[name]!();
      scheduler.step();
      const target = schedulerTarget(scheduler);
      expect(target.type).toBe(name);
      const before = target.getState();
      const ratesBefore = [...scheduler.groups.lr];
      const undo = await target.setState(stateOf(name));
      expect(target.getState()).toEqual(torchStates[name]);
      await undo();
      expect(target.getState()).toEqual(before);
      expect(scheduler.groups.lr).toEqual(ratesBefore);
      scheduler.step();
      const after = target.getState();
      await undo(); // a second call does nothing
      expect(target.getState()).toEqual(after);
    },
  );

  it("rejects a bad state with a LoadError naming the field and changes nothing", async () => {
    const scheduler = makers.CosineAnnealingLR!();
    const target = schedulerTarget(scheduler);
    const before = target.getState();
    const state = { ...stateOf("CosineAnnealingLR"), eta_min: null };
    await expect(target.setState(state)).rejects.toMatchObject({
      name: "LoadError",
      code: "BAD_SCHEDULER_FIELD",
      key: "eta_min",
    });
    expect(target.getState()).toEqual(before);
  });

  it("resets to the constructor's state, and undoes the reset", async () => {
    const scheduler = makers.SequentialLR!();
    const fresh = scheduler.stateDict();
    for (let i = 0; i < 5; i++) scheduler.step();
    const stepped = scheduler.stateDict();
    const target = schedulerTarget(scheduler);
    const undo = await target.reset();
    expect(target.getState()).toEqual(fresh);
    await undo();
    expect(target.getState()).toEqual(stepped);
  });
});
