import { describe, expect, it } from "vitest";
import { ConfigError, LoadError } from "../../src/errors.js";
import { planLoad } from "../../src/pipeline/load.js";
import { freshTrainingState } from "../../src/state/training-state.js";
import {
  expected,
  expectUnchanged,
  initValue,
  load,
  loading,
  rejection,
  snapshotOf,
  sourceCheckpoint,
  sourceValue,
  TARGET_HYPER,
  TARGET_SCHEDULER_INITIAL,
  TINY,
  TINY_PARAMS,
  targetValue,
  tinyTargets,
  valuesOf,
} from "./helpers.js";

const RESET_REASON = "matches reset_layers: keeps the model's own initialisation";

async function coldStart(resetLayers: string[], init = true) {
  const { checkpoint } = sourceCheckpoint({ prefix: "model." });
  const targets = await tinyTargets({ init });
  const result = await load(
    checkpoint,
    targets,
    loading("cold_start", { reset_layers: resetLayers }),
  );
  return { targets, ...result, plan: result.report.plan! };
}

describe("cold_start", () => {
  it("loads the weights, zeroes the training state, starts optimizer and scheduler afresh", async () => {
    const { targets, trainingState, plan } = await coldStart([]);
    expect(plan.violations).toEqual([]);
    expect(plan.entries.every((e) => e.action === "load")).toBe(true);
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [2, 3], sourceValue),
    );
    expect(plan.trainingState.action).toBe("reset");
    expect(trainingState).toEqual(freshTrainingState());
    expect(plan.optimizer?.action).toBe("reset");
    expect(targets.optimizer!.getState()).toEqual({
      type: "AdamW",
      groups: [{ params: TINY_PARAMS, hyper: TARGET_HYPER }],
      state: new Map(),
    });
    expect(plan.scheduler?.action).toBe("reset");
    expect(targets.scheduler!.getState()).toEqual(TARGET_SCHEDULER_INITIAL);
  });

  it("reset_layers by dotted prefix: those parameters get their own initialiser's values", async () => {
    const { targets, plan } = await coldStart(["dec"]);
    const actions = plan.entries.map((e) => [e.target, e.action]);
    expect(actions).toEqual(
      TINY.map((d) => [d.name, d.name.startsWith("dec.") ? "reset" : "load"]),
    );
    const reset = plan.entries.filter((e) => e.action === "reset");
    expect(reset.map((e) => [e.source, e.reason])).toEqual([
      ["model.dec.weight", RESET_REASON],
      ["model.dec.bias", RESET_REASON],
    ]);
    // Paired with the checkpoint's keys, so they are not reported as unexpected.
    expect(plan.unexpected).toEqual([]);
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [2, 3], initValue),
    );
    expect(await valuesOf(targets, "dec.bias")).toEqual(expected("dec.bias", [2], initValue));
    expect(await valuesOf(targets, "enc.weight")).toEqual(
      expected("enc.weight", [3, 2], sourceValue),
    );
  });

  it("a trailing dot means the same prefix; a prefix never matches a longer name", async () => {
    const { plan } = await coldStart(["enc."]);
    expect(plan.entries.filter((e) => e.action === "reset").map((e) => e.target)).toEqual([
      "enc.weight",
      "enc.bias",
    ]);
    const { targets } = await coldStart(["dec.weight"]);
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [2, 3], initValue),
    );
    expect(await valuesOf(targets, "dec.bias")).toEqual(expected("dec.bias", [2], sourceValue));
  });

  it("reset_layers by glob", async () => {
    const { targets, plan } = await coldStart(["*.bias"]);
    expect(plan.entries.filter((e) => e.action === "reset").map((e) => e.target)).toEqual([
      "enc.bias",
      "bn.bias",
      "dec.bias",
    ]);
    expect(await valuesOf(targets, "bn.bias")).toEqual(expected("bn.bias", [3], initValue));
    expect(await valuesOf(targets, "bn.weight")).toEqual(expected("bn.weight", [3], sourceValue));
  });

  it("a reset buffer without an initialiser keeps the value it had", async () => {
    const { targets, plan } = await coldStart(["bn"]);
    expect(plan.entries.filter((e) => e.action === "reset").map((e) => e.target)).toEqual([
      "bn.weight",
      "bn.bias",
      "bn.running_mean",
      "bn.num_batches_tracked",
    ]);
    expect(await valuesOf(targets, "bn.weight")).toEqual(expected("bn.weight", [3], initValue));
    expect(await valuesOf(targets, "bn.running_mean")).toEqual(
      expected("bn.running_mean", [3], targetValue),
    );
  });

  it("a target that cannot re-initialise keeps its current values for reset parameters", async () => {
    const { targets } = await coldStart(["dec"], false);
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [2, 3], targetValue),
    );
  });

  for (const typo of ["de", "decoder", "dec.w", "*.gamma"]) {
    it(`a pattern that matches nothing ('${typo}') is an error, and nothing changes`, async () => {
      const { checkpoint } = sourceCheckpoint({ prefix: "model." });
      const targets = await tinyTargets();
      const before = snapshotOf(targets);
      const config = loading("cold_start", { reset_layers: ["dec", typo] });
      const plan = await planLoad({ checkpoint, targets, config });
      expect(plan.violations).toEqual([
        `reset_layers pattern '${typo}' matches no parameter of the model (a typo would silently reset nothing)`,
      ]);
      const error = await rejection(load(checkpoint, targets, config));
      expect(error).toBeInstanceOf(LoadError);
      expect(error.message).toContain(`'${typo}'`);
      expectUnchanged(targets, before);
    });
  }

  it("reset_layers is refused by the other strategies' configs", () => {
    for (const type of ["weights_only", "transfer_learning", "warm_start"]) {
      expect(() => loading(type, { reset_layers: ["dec"] })).toThrow(ConfigError);
      expect(() => loading(type, { reset_layers: ["dec"] })).toThrow(
        /only cold_start resets layers/,
      );
    }
  });
});
