import { describe, expect, it } from "vitest";
import { LoadError } from "../../src/errors.js";
import { planLoad } from "../../src/pipeline/load.js";
import type { OptimizerState } from "../../src/targets/types.js";
import { numelOf } from "../../src/tensors/shape.js";
import {
  expAvg,
  expAvgSq,
  expected,
  expectUnchanged,
  load,
  loading,
  RUN_STATE,
  rejection,
  SOURCE_BEST,
  SOURCE_EPOCH,
  SOURCE_LR,
  SOURCE_SCHEDULER,
  SOURCE_STEP,
  snapshotOf,
  sourceCheckpoint,
  sourceValue,
  TINY,
  TINY_PARAMS,
  tinyTargets,
  tinyWith,
  valuesOf,
} from "./helpers.js";

const PARAM_SHAPES = new Map(TINY.map((d) => [d.name, d.shape]));

/** The optimizer state the hand-built checkpoint holds, keyed by name, as a target receives it. */
function checkpointOptimizerState(): Pick<OptimizerState, "groups" | "state"> {
  return {
    groups: [
      {
        params: TINY_PARAMS,
        hyper: {
          lr: SOURCE_LR,
          betas: [0.9, 0.999],
          eps: 1e-8,
          weight_decay: 0.01,
          amsgrad: false,
          initial_lr: 0.01,
        },
      },
    ],
    state: new Map(
      TINY_PARAMS.map((name, p) => {
        const n = numelOf(PARAM_SHAPES.get(name)!);
        const ramp = (f: (p: number, i: number) => number) =>
          Float32Array.from({ length: n }, (_, i) => f(p, i));
        return [
          name,
          {
            scalars: { step: SOURCE_STEP },
            tensors: new Map([
              ["exp_avg", ramp(expAvg)],
              ["exp_avg_sq", ramp(expAvgSq)],
            ]),
          },
        ];
      }),
    ),
  };
}

describe("warm_start", () => {
  for (const paramNames of [true, false]) {
    const by = paramNames ? "param_names" : "parameter order";
    it(`restores model, optimizer (by ${by}), scheduler and training state exactly`, async () => {
      const { checkpoint } = sourceCheckpoint({ prefix: "model.", paramNames });
      const targets = await tinyTargets();

      const { trainingState, report } = await load(checkpoint, targets, loading("warm_start"));

      const plan = report.plan!;
      expect(plan.violations).toEqual([]);
      expect(plan.entries.every((e) => e.action === "load")).toBe(true);
      expect(await valuesOf(targets, "dec.weight")).toEqual(
        expected("dec.weight", [2, 3], sourceValue),
      );

      expect(plan.optimizer).toMatchObject({
        action: "restore",
        mapping: paramNames ? "param_names" : "parameter_order",
        type: "Adam-like",
        sourcePath: ["optimizer_states", 0],
      });
      expect(plan.optimizer!.entries).toEqual(
        TINY_PARAMS.map((param, index) => ({
          param,
          sourceIndex: index,
          fields: ["step", "exp_avg", "exp_avg_sq"],
        })),
      );
      const state = targets.optimizer!.getState();
      expect({ groups: state.groups, state: state.state }).toEqual(checkpointOptimizerState());

      expect(plan.scheduler).toMatchObject({ action: "restore", sourcePath: ["lr_schedulers", 0] });
      expect(targets.scheduler!.getState()).toEqual(SOURCE_SCHEDULER);

      expect(plan.trainingState).toMatchObject({
        action: "restore",
        reason: "from the lightning record",
      });
      expect(trainingState).toEqual({
        epoch: SOURCE_EPOCH,
        globalStep: SOURCE_STEP,
        bestMetric: SOURCE_BEST,
        metricsHistory: [],
      });
    });
  }

  it("a wider head fails, listing the model and optimizer differences; nothing changes", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets({
      decls: tinyWith({ "dec.weight": { shape: [4, 3] }, "dec.bias": { shape: [4] } }),
    });
    const before = snapshotOf(targets);

    const plan = await planLoad({ checkpoint, targets, config: loading("warm_start") });
    expect(plan.violations).toEqual([
      "shape mismatch for 'dec.weight': checkpoint [2, 3] vs model [4, 3]",
      "shape mismatch for 'dec.bias': checkpoint [2] vs model [4]",
      expect.stringMatching(/^optimizer state: the optimizer state does not fit the target/),
    ]);
    const optimizerProblem = plan.violations[2]!;
    for (const slot of ["exp_avg", "exp_avg_sq"]) {
      expect(optimizerProblem).toContain(
        `state 4 ${slot} has shape [2, 3] but 'dec.weight' has [4, 3]`,
      );
      expect(optimizerProblem).toContain(`state 5 ${slot} has shape [2] but 'dec.bias' has [4]`);
    }

    const error = await rejection(load(checkpoint, targets, loading("warm_start")));
    expect(error).toBeInstanceOf(LoadError);
    expect(error.message).toContain("(3 problems)");
    expect(error.message).toContain("'dec.weight' has [4, 3]");
    expectUnchanged(targets, before);
  });

  it("a model with an extra parameter fails: no checkpoint tensor and no optimizer state for it", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets({
      decls: tinyWith({}, [
        { name: "aux.weight", shape: [2], dtype: "float32", kind: "parameter" },
      ]),
    });
    const before = snapshotOf(targets);
    const plan = await planLoad({ checkpoint, targets, config: loading("warm_start") });
    expect(plan.violations).toContain(
      "strict: model parameter 'aux.weight' is not in the checkpoint",
    );
    expect(plan.violations).toContain(
      "optimizer state has no entry for model parameter(s) aux.weight",
    );
    await expect(load(checkpoint, targets, loading("warm_start"))).rejects.toThrow(LoadError);
    expectUnchanged(targets, before);
  });

  const kinds = [
    { checkpointKind: "sgd" as const, target: "AdamW", named: "SGD" },
    { checkpointKind: "adam" as const, target: "SGD", named: "Adam-like" },
  ];
  for (const { checkpointKind, target, named } of kinds) {
    it(`${named} state into an ${target} optimizer fails, naming both kinds`, async () => {
      const { checkpoint } = sourceCheckpoint({ prefix: "model.", optimizer: checkpointKind });
      const targets = await tinyTargets({ optimizer: target });
      const before = snapshotOf(targets);
      const plan = await planLoad({ checkpoint, targets, config: loading("warm_start") });
      expect(plan.violations).toEqual([
        `optimizer kind differs: the checkpoint's state is from an optimizer of kind ${named}, the target optimizer is ${target}`,
      ]);
      const error = await rejection(load(checkpoint, targets, loading("warm_start")));
      expect(error.message).toContain("optimizer kind differs");
      expectUnchanged(targets, before);
    });
  }

  it("Adam's state restores into an Adam optimizer (same kind of state as AdamW)", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets({ optimizer: "Adam" });
    const { report } = await load(checkpoint, targets, loading("warm_start"));
    expect(report.plan!.violations).toEqual([]);
    expect(targets.optimizer!.getState().state.get("enc.bias")?.scalars).toEqual({
      step: SOURCE_STEP,
    });
  });

  it("SGD momentum restores into an SGD optimizer", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model.", optimizer: "sgd" });
    const targets = await tinyTargets({ optimizer: "SGD" });
    await load(checkpoint, targets, loading("warm_start"));
    const state = targets.optimizer!.getState().state;
    expect([...state.keys()]).toEqual(TINY_PARAMS);
    // Position 4 is dec.weight: momentum_buffer = -(4 + 1) - i / 2.
    expect(
      Array.from(state.get("dec.weight")!.tensors.get("momentum_buffer") as Float32Array),
    ).toEqual([-5, -5.5, -6, -6.5, -7, -7.5]);
  });

  const missingParts = [
    { options: { optimizer: "none" as const }, problem: "holds no optimizer state to resume from" },
    { options: { scheduler: false }, problem: "holds no scheduler state to resume from" },
    {
      options: { counters: false },
      problem: "records no training state (epoch, global_step) to resume from",
    },
  ];
  for (const { options, problem } of missingParts) {
    it(`a checkpoint that ${problem.split(" to ")[0]} cannot be resumed`, async () => {
      const { checkpoint } = sourceCheckpoint({ prefix: "model.", ...options });
      const targets = await tinyTargets();
      const before = snapshotOf(targets);
      const error = await rejection(load(checkpoint, targets, loading("warm_start")));
      expect(error).toBeInstanceOf(LoadError);
      expect(error.message).toContain(`warm_start: the checkpoint ${problem}`);
      expectUnchanged(targets, before);
    });
  }

  it("targets without optimizer or scheduler restore model and training state only", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets({ optimizer: null, scheduler: false });
    const { trainingState, report } = await load(checkpoint, targets, loading("warm_start"));
    expect(report.plan!.optimizer).toBeNull();
    expect(report.plan!.scheduler).toBeNull();
    expect(trainingState.globalStep).toBe(SOURCE_STEP);
  });

  it("warm_start refuses partial-load options in its config", () => {
    expect(() => loading("warm_start", { strict: false })).toThrow(/not allowed with warm_start/);
    expect(() => loading("warm_start", { mismatch: "overlap" })).toThrow(
      /not allowed with warm_start/,
    );
    expect(() => loading("warm_start", { freeze_loaded: true })).toThrow(
      /not allowed with warm_start/,
    );
  });

  it("the caller's training state object is not modified", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const mine = structuredClone(RUN_STATE);
    await load(checkpoint, targets, loading("warm_start"), { trainingState: mine });
    expect(mine).toEqual(RUN_STATE);
  });
});
