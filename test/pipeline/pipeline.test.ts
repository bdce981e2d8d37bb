import { describe, expect, it } from "vitest";
import { Checkpoint } from "../../src/checkpoint/checkpoint.js";
import { LoadError, TensorError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/byte-source.js";
import type { CheckpointContext, PipelineStage } from "../../src/pipeline/context.js";
import { planLoad } from "../../src/pipeline/load.js";
import { MemoryModel, sameSnapshot } from "../../src/targets/memory.js";
import {
  dict,
  expected,
  expectUnchanged,
  FlakySource,
  load,
  loading,
  RUN_STATE,
  rejection,
  snapshotOf,
  sourceCheckpoint,
  sourceValue,
  tensorIn,
  tinyTargets,
  valuesOf,
} from "../strategies/helpers.js";

/** A stage that records the context it saw and adds its name to the metadata. */
function recorder(name: string, seen: CheckpointContext[]): PipelineStage {
  return {
    name,
    async process(context) {
      seen.push(context);
      return { ...context, metadata: { ...context.metadata, [name]: true } };
    },
  };
}

const failing = (name: string, error: unknown): PipelineStage => ({
  name,
  async process() {
    throw error;
  },
});

describe("CheckpointPipeline via runLoad", () => {
  it("runs read_metadata, the stages before, the strategy, the stages after, in order", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const seen: CheckpointContext[] = [];
    const { report } = await load(checkpoint, targets, loading("weights_only"), {
      before: [recorder("first", seen)],
      after: [recorder("last", seen)],
    });
    expect(report.stages.map((s) => s.name)).toEqual([
      "read_metadata",
      "first",
      "weights_only",
      "last",
    ]);
    expect(report.stages.every((s) => s.ms >= 0)).toBe(true);
    // Each stage gets what the one before returned; the last one sees the load applied.
    expect(seen[0]!.metadata).toEqual({});
    expect(seen[1]!.metadata).toEqual({ first: true });
    expect(seen[0]!.report.applied).toBe(false);
    expect(seen[1]!.report.applied).toBe(true);
    expect(seen[1]!.report.plan?.strategy).toBe("weights_only");
    expect(seen[1]!.trainingState).toEqual(RUN_STATE);
  });

  it("read_metadata gathers safetensors metadata and the zip's JSON records", async () => {
    const file = new FlakySource("meta.ckpt");
    const root = dict([["w", tensorIn(file, [1, 2], [2])]]);
    const json = new TextEncoder().encode('{"training": {"epoch": 3}}');
    const checkpoint = new Checkpoint(file, {
      format: "torch-zip",
      root,
      opaqueClasses: new Set(),
      metadata: { format: "pt" },
      records: new Map([["anemoi-metadata/anemoi.json", new MemorySource(json, "anemoi.json")]]),
      details: {},
      ownedSources: [],
    });
    const seen: CheckpointContext[] = [];
    const targets = { model: new MemoryModel([{ name: "w", shape: [2], dtype: "float32" }]) };
    await load(checkpoint, targets, loading("weights_only"), { before: [recorder("x", seen)] });
    expect(seen[0]!.metadata).toEqual({
      format: "pt",
      "anemoi-metadata/anemoi.json": { training: { epoch: 3 } },
    });
  });

  it("a stage throwing a plain error fails the load as STAGE_FAILED, naming the stage", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const cause = new RangeError("bad index");
    const error = await rejection(
      load(checkpoint, targets, loading("weights_only"), { before: [failing("remap", cause)] }),
    );
    expect(error).toBeInstanceOf(LoadError);
    expect(error.code).toBe("STAGE_FAILED");
    expect(error.message).toContain("stage 'remap' failed: bad index");
    expect(error.message).toContain("source.ckpt");
    expect(error.cause).toBe(cause);
    expectUnchanged(targets, before);
  });

  it("a LoadoutError from a stage passes through unchanged", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const mine = new TensorError("MINE", "my stage refuses");
    const error = await rejection(
      load(checkpoint, targets, loading("weights_only"), { before: [failing("x", mine)] }),
    );
    expect(error).toBe(mine);
  });

  it("a stage after the strategy failing undoes the whole load", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const error = await rejection(
      load(checkpoint, targets, loading("warm_start", { freeze: ["enc"] }), {
        after: [failing("export", new Error("disk full"))],
      }),
    );
    expect(error.code).toBe("STAGE_FAILED");
    expectUnchanged(targets, before);
  });

  it("in_place: a later stage failing undoes all but the tensors read in place", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    await rejection(
      load(checkpoint, targets, loading("warm_start", { mode: "in_place", freeze: ["dec"] }), {
        after: [failing("export", new Error("disk full"))],
      }),
    );
    expect(targets.optimizer!.getState()).toEqual(before.optimizer);
    expect(targets.scheduler!.getState()).toEqual(before.scheduler);
    expect(targets.model.parameters()).toEqual(before.model.parameters);
    // What in-place mode documents: tensors read straight into the model stay loaded.
    expect(await valuesOf(targets, "dec.bias")).toEqual(expected("dec.bias", [2], sourceValue));
  });

  it("an undo that fails is reported as ROLLBACK_FAILED", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const brokenUndo: PipelineStage = {
      name: "broken",
      async process(context) {
        const undo = async () => {
          throw new Error("cannot restore");
        };
        return { ...context, commits: [...(context.commits ?? []), undo] };
      },
    };
    const error = await rejection(
      load(checkpoint, targets, loading("weights_only"), {
        before: [brokenUndo],
        after: [failing("x", new Error("boom"))],
      }),
    );
    expect(error.code).toBe("ROLLBACK_FAILED");
    expect(error.message).toContain("boom");
  });

  it("an aborted signal stops the load before the first stage", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(
      load(checkpoint, targets, loading("weights_only"), { signal: controller.signal }),
    );
    expect(error.code).toBe("ABORTED");
    expect(error.message).toContain("before stage 'read_metadata'");
    expectUnchanged(targets, before);
  });

  for (const mode of ["transactional", "in_place"] as const) {
    it(`${mode}: aborting after the strategy committed undoes it`, async () => {
      const { checkpoint } = sourceCheckpoint({ prefix: "model." });
      const targets = await tinyTargets();
      const before = snapshotOf(targets);
      const controller = new AbortController();
      const abortNow: PipelineStage = {
        name: "user_cancels",
        async process(context) {
          controller.abort();
          return context;
        },
      };
      const error = await rejection(
        load(checkpoint, targets, loading("cold_start", { mode, reset_layers: ["dec"] }), {
          signal: controller.signal,
          after: [abortNow, recorder("never", [])],
        }),
      );
      expect(error.code).toBe("ABORTED");
      expect(error.message).toContain("before stage 'never'");
      expect(targets.optimizer!.getState()).toEqual(before.optimizer);
      expect(targets.scheduler!.getState()).toEqual(before.scheduler);
      if (mode === "transactional") expectUnchanged(targets, before);
    });
  }

  it("transactional: aborting while tensors are staged changes nothing", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const controller = new AbortController();
    const error = await rejection(
      load(checkpoint, targets, loading("warm_start"), {
        signal: controller.signal,
        onProgress: (event) => {
          if (event.tensorsDone === 3) controller.abort();
        },
      }),
    );
    expect(error.code).toBe("ABORTED");
    expect(error.message).toContain("nothing was changed");
    expectUnchanged(targets, before);
  });

  it("transactional: aborting after the last tensor, before the commit, changes nothing", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const controller = new AbortController();
    const error = await rejection(
      load(checkpoint, targets, loading("weights_only"), {
        signal: controller.signal,
        onProgress: (event) => {
          if (event.tensorsDone === event.tensorsTotal) controller.abort();
        },
      }),
    );
    expect(error.code).toBe("ABORTED");
    expectUnchanged(targets, before);
  });

  it("planLoad shows the plan and changes nothing", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const plan = await planLoad({ checkpoint, targets, config: loading("warm_start") });
    expect(plan.strategy).toBe("warm_start");
    expect(plan.optimizer?.action).toBe("restore");
    expect(sameSnapshot(before.model, targets.model.snapshot())).toBe(true);
    expectUnchanged(targets, before);
  });
});
