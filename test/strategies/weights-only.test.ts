import { describe, expect, it } from "vitest";
import { LoadError } from "../../src/errors.js";
import { planLoad } from "../../src/pipeline/load.js";
import {
  expected,
  expectUnchanged,
  load,
  loading,
  NUM_BATCHES_SOURCE,
  RUN_STATE,
  rejection,
  snapshotOf,
  sourceCheckpoint,
  sourceValue,
  TINY,
  TINY_NAMES,
  targetValue,
  tinyTargets,
  tinyWith,
  valuesOf,
} from "./helpers.js";

describe("weights_only", () => {
  it("loads every tensor and leaves optimizer, scheduler and training state alone", async () => {
    const { checkpoint } = sourceCheckpoint({ lightning: false });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);

    const { trainingState, report } = await load(checkpoint, targets, loading("weights_only"));

    const plan = report.plan!;
    expect(plan.strategy).toBe("weights_only");
    expect(plan.entries.map((e) => [e.target, e.source, e.action, e.reason])).toEqual(
      TINY_NAMES.map((name) => [name, name, "load", "same name and shape"]),
    );
    for (const decl of TINY.filter((d) => d.dtype === "float32")) {
      expect(await valuesOf(targets, decl.name)).toEqual(
        expected(decl.name, decl.shape, sourceValue),
      );
    }
    expect(await targets.model.read("bn.num_batches_tracked")).toEqual(
      BigInt64Array.of(NUM_BATCHES_SOURCE),
    );
    // Nothing else is touched: the optimizer keeps its moments, the scheduler its epoch, the run its counters.
    expect(plan.optimizer).toMatchObject({ action: "keep", mapping: null, entries: [] });
    expect(plan.scheduler).toMatchObject({ action: "keep", sourcePath: null });
    expect(plan.trainingState.action).toBe("keep");
    expect(targets.optimizer!.getState()).toEqual(before.optimizer);
    expect(targets.scheduler!.getState()).toEqual(before.scheduler);
    expect(trainingState).toEqual(RUN_STATE);
    // Trainable flags are as they were (nothing frozen).
    expect(targets.model.parameters().map((p) => p.trainable)).toEqual(
      before.model.parameters.map((p) => p.trainable),
    );
    expect(plan.entries.every((e) => !e.frozen)).toBe(true);
    expect(report.applied).toBe(true);
    expect(report.tensorsLoaded).toBe(TINY.length);
  });

  it("finds a Lightning checkpoint's `model.` keys and ignores its optimizer state", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);

    const { trainingState, report } = await load(checkpoint, targets, loading("weights_only"));

    const plan = report.plan!;
    expect(plan.keyTransforms).toEqual([{ from: "model.", to: "", count: TINY.length }]);
    expect(plan.entries.map((e) => [e.target, e.source, e.action])).toEqual(
      TINY_NAMES.map((name) => [name, `model.${name}`, "load"]),
    );
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [2, 3], sourceValue),
    );
    expect(targets.optimizer!.getState()).toEqual(before.optimizer);
    expect(targets.scheduler!.getState()).toEqual(before.scheduler);
    expect(trainingState).toEqual(RUN_STATE);
  });

  it("strict: a missing parameter fails with a LoadError naming it, and changes nothing", async () => {
    const { checkpoint } = sourceCheckpoint({
      lightning: false,
      decls: TINY.filter((d) => d.name !== "dec.bias"),
    });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);

    const plan = await planLoad({ checkpoint, targets, config: loading("weights_only") });
    const entry = plan.entries.find((e) => e.target === "dec.bias")!;
    expect(entry).toMatchObject({
      action: "missing",
      source: null,
      reason: "not in the checkpoint",
    });
    expect(plan.violations).toEqual([
      "strict: model parameter 'dec.bias' is not in the checkpoint",
    ]);

    const error = await rejection(load(checkpoint, targets, loading("weights_only")));
    expect(error).toBeInstanceOf(LoadError);
    expect(error.code).toBe("PLAN_VIOLATIONS");
    expect(error.message).toContain("(1 problem)");
    expect(error.message).toContain("'dec.bias' is not in the checkpoint");
    expect(error.message).toContain("Nothing was changed");
    expectUnchanged(targets, before);
  });

  it("strict: an unexpected checkpoint key fails the load, naming the key", async () => {
    const { checkpoint } = sourceCheckpoint({
      lightning: false,
      decls: tinyWith({}, [
        { name: "aux.weight", shape: [5], dtype: "float32", kind: "parameter" },
      ]),
    });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);

    const plan = await planLoad({ checkpoint, targets, config: loading("weights_only") });
    expect(plan.unexpected).toEqual([
      {
        source: "aux.weight",
        shape: [5],
        dtype: "float32",
        reason: "no parameter of the model matches it",
      },
    ]);
    expect(plan.violations).toHaveLength(1);
    expect(plan.violations[0]).toMatch(/^strict: 1 checkpoint key\(s\) match no model parameter/);
    expect(plan.violations[0]).toContain("'aux.weight'");

    const error = await rejection(load(checkpoint, targets, loading("weights_only")));
    expect(error).toBeInstanceOf(LoadError);
    expect(error.message).toContain("'aux.weight'");
    expectUnchanged(targets, before);
  });

  it("strict: a shape mismatch fails the load with both shapes", async () => {
    const { checkpoint } = sourceCheckpoint({ lightning: false });
    const targets = await tinyTargets({
      decls: tinyWith({ "dec.weight": { shape: [4, 3] }, "dec.bias": { shape: [4] } }),
    });
    const before = snapshotOf(targets);

    const plan = await planLoad({ checkpoint, targets, config: loading("weights_only") });
    expect(plan.entries.find((e) => e.target === "dec.weight")).toMatchObject({
      action: "skip",
      sourceShape: [2, 3],
      targetShape: [4, 3],
      reason: "shape mismatch (checkpoint [2, 3] vs model [4, 3])",
    });
    expect(plan.violations).toEqual([
      "shape mismatch for 'dec.weight': checkpoint [2, 3] vs model [4, 3]",
      "shape mismatch for 'dec.bias': checkpoint [2] vs model [4]",
    ]);
    const error = await rejection(load(checkpoint, targets, loading("weights_only")));
    expect(error).toBeInstanceOf(LoadError);
    expect(error.message).toContain("(2 problems)");
    expect(error.message).toContain("checkpoint [2, 3] vs model [4, 3]");
    expectUnchanged(targets, before);
  });

  it("lists every violation at once: missing, unexpected and mismatched", async () => {
    const { checkpoint } = sourceCheckpoint({
      lightning: false,
      decls: tinyWith({ "enc.bias": { shape: [5] } }, [
        { name: "aux.weight", shape: [1], dtype: "float32", kind: "parameter" },
      ]).filter((d) => d.name !== "dec.bias"),
    });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const error = await rejection(load(checkpoint, targets, loading("weights_only")));
    expect(error.code).toBe("PLAN_VIOLATIONS");
    expect(error.message).toContain("(3 problems)");
    expect(error.message).toContain("shape mismatch for 'enc.bias': checkpoint [5] vs model [3]");
    expect(error.message).toContain("'dec.bias' is not in the checkpoint");
    expect(error.message).toContain("'aux.weight'");
    expectUnchanged(targets, before);
  });

  it("strict: false keeps what the checkpoint lacks and reports what it has extra", async () => {
    const { checkpoint } = sourceCheckpoint({
      lightning: false,
      decls: tinyWith({}, [
        { name: "aux.weight", shape: [2], dtype: "float32", kind: "parameter" },
      ]).filter((d) => d.name !== "dec.bias"),
    });
    const targets = await tinyTargets();
    const config = loading("weights_only", { strict: false });

    const { report } = await load(checkpoint, targets, config);

    const plan = report.plan!;
    expect(plan.violations).toEqual([]);
    expect(plan.entries.find((e) => e.target === "dec.bias")).toMatchObject({
      action: "keep",
      reason: "not in the checkpoint; keeps its current value",
    });
    expect(plan.unexpected.map((u) => [u.source, u.reason])).toEqual([
      ["aux.weight", "no parameter of the model matches it"],
    ]);
    expect(await valuesOf(targets, "dec.bias")).toEqual(expected("dec.bias", [2], targetValue));
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [2, 3], sourceValue),
    );
  });

  it("strict: false still refuses a shape mismatch (weights_only's mismatch is error)", async () => {
    const { checkpoint } = sourceCheckpoint({ lightning: false });
    const targets = await tinyTargets({ decls: tinyWith({ "dec.bias": { shape: [4] } }) });
    const before = snapshotOf(targets);
    const config = loading("weights_only", { strict: false });
    expect(config.mismatch).toBe("error");
    const error = await rejection(load(checkpoint, targets, config));
    expect(error.message).toContain("shape mismatch for 'dec.bias': checkpoint [2] vs model [4]");
    expectUnchanged(targets, before);
  });

  it("planning changes nothing and reads no tensor data", async () => {
    const { checkpoint, file } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    await planLoad({ checkpoint, targets, config: loading("weights_only") });
    expectUnchanged(targets, before);
    expect(file.bytesRead).toBe(0);
  });
});
