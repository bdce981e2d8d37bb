import { describe, expect, it } from "vitest";
import { LoadError } from "../../src/errors.js";
import { planLoad } from "../../src/pipeline/load.js";
import { freshTrainingState } from "../../src/state/training-state.js";
import { MemoryModel } from "../../src/targets/memory.js";
import {
  expected,
  expectUnchanged,
  load,
  loading,
  rejection,
  snapshotOf,
  sourceCheckpoint,
  sourceValue,
  stateDictCheckpoint,
  TARGET_HYPER,
  TARGET_SCHEDULER_INITIAL,
  TINY_PARAMS,
  targetValue,
  tinyTargets,
  tinyWith,
  valuesOf,
} from "./helpers.js";

/** The checkpoint's dec.weight is [2, 3]; these targets resize it. */
const WIDER_HEAD = tinyWith({ "dec.weight": { shape: [4, 3] }, "dec.bias": { shape: [4] } });

/**
 * What a [rows, cols] target holds after the overlap of a [sourceRows, sourceCols] source is
 * copied into it: element (r, c) comes from the source where both have it, else stays.
 */
function overlapExpectation(
  name: string,
  source: [number, number],
  target: [number, number],
): number[] {
  const out: number[] = [];
  for (let r = 0; r < target[0]; r++) {
    for (let c = 0; c < target[1]; c++) {
      const inSource = r < source[0] && c < source[1];
      out.push(
        inSource ? sourceValue(name, r * source[1] + c) : targetValue(name, r * target[1] + c),
      );
    }
  }
  return out;
}

describe("transfer_learning", () => {
  it("skips mismatched shapes, loads the rest, and starts optimizer, scheduler and run afresh", async () => {
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets({ decls: WIDER_HEAD });

    const { trainingState, report } = await load(checkpoint, targets, loading("transfer_learning"));

    const plan = report.plan!;
    expect(plan.violations).toEqual([]);
    const byTarget = new Map(plan.entries.map((e) => [e.target, e]));
    expect(byTarget.get("dec.weight")).toMatchObject({
      action: "skip",
      source: "model.dec.weight",
      sourceShape: [2, 3],
      targetShape: [4, 3],
      overlap: null,
      reason: "shape mismatch (checkpoint [2, 3] vs model [4, 3]): skipped",
    });
    expect(byTarget.get("dec.bias")?.action).toBe("skip");
    expect(plan.entries.filter((e) => e.action === "load").map((e) => e.target)).toEqual([
      "enc.weight",
      "enc.bias",
      "bn.weight",
      "bn.bias",
      "bn.running_mean",
      "bn.num_batches_tracked",
    ]);
    expect(await valuesOf(targets, "dec.weight")).toEqual(
      expected("dec.weight", [4, 3], targetValue),
    );
    expect(await valuesOf(targets, "enc.weight")).toEqual(
      expected("enc.weight", [3, 2], sourceValue),
    );

    // Fresh optimizer (no moments, its own hyperparameters), scheduler at its start, run at zero.
    expect(plan.optimizer).toMatchObject({ action: "reset", entries: [] });
    expect(targets.optimizer!.getState()).toEqual({
      type: "AdamW",
      groups: [{ params: TINY_PARAMS, hyper: TARGET_HYPER }],
      state: new Map(),
    });
    expect(plan.scheduler?.action).toBe("reset");
    expect(targets.scheduler!.getState()).toEqual(TARGET_SCHEDULER_INITIAL);
    expect(plan.trainingState.action).toBe("reset");
    expect(trainingState).toEqual(freshTrainingState());
  });

  it("skip_mismatched: true is the default spelled out", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets({ decls: WIDER_HEAD });
    const explicit = await planLoad({
      checkpoint,
      targets,
      config: loading("transfer_learning", { skip_mismatched: true }),
    });
    const implicit = await planLoad({ checkpoint, targets, config: loading("transfer_learning") });
    expect(explicit.entries).toEqual(implicit.entries);
  });

  for (const option of [{ skip_mismatched: false }, { mismatch: "error" }]) {
    it(`${JSON.stringify(option)}: a mismatch is an error listing each, and nothing changes`, async () => {
      const { checkpoint } = sourceCheckpoint();
      const targets = await tinyTargets({ decls: WIDER_HEAD });
      const before = snapshotOf(targets);
      const error = await rejection(
        load(checkpoint, targets, loading("transfer_learning", option)),
      );
      expect(error).toBeInstanceOf(LoadError);
      expect(error.message).toContain("(2 problems)");
      expect(error.message).toContain(
        "shape mismatch for 'dec.weight': checkpoint [2, 3] vs model [4, 3]",
      );
      expect(error.message).toContain("shape mismatch for 'dec.bias': checkpoint [2] vs model [4]");
      expectUnchanged(targets, before);
    });
  }

  describe("mismatch: overlap", () => {
    const overlap = () => loading("transfer_learning", { mismatch: "overlap" });

    it("a grown output layer gets the checkpoint's rows; the new rows keep their values", async () => {
      const { checkpoint } = sourceCheckpoint();
      const targets = await tinyTargets({ decls: WIDER_HEAD });
      const { report } = await load(checkpoint, targets, overlap());
      expect(report.plan!.entries.find((e) => e.target === "dec.weight")).toMatchObject({
        action: "load",
        overlap: [2, 3],
        reason:
          "shape mismatch (checkpoint [2, 3] vs model [4, 3]): copies the overlapping block [2, 3], the rest keeps its current value",
      });
      expect(await valuesOf(targets, "dec.weight")).toEqual(
        overlapExpectation("dec.weight", [2, 3], [4, 3]),
      );
      // 1-d: the first two of four.
      expect(await valuesOf(targets, "dec.bias")).toEqual([
        sourceValue("dec.bias", 0),
        sourceValue("dec.bias", 1),
        targetValue("dec.bias", 2),
        targetValue("dec.bias", 3),
      ]);
    });

    it("a shrunk output layer gets the checkpoint's first rows", async () => {
      const { checkpoint } = sourceCheckpoint();
      const targets = await tinyTargets({
        decls: tinyWith({ "dec.weight": { shape: [1, 3] }, "dec.bias": { shape: [1] } }),
      });
      await load(checkpoint, targets, overlap());
      expect(await valuesOf(targets, "dec.weight")).toEqual([
        sourceValue("dec.weight", 0),
        sourceValue("dec.weight", 1),
        sourceValue("dec.weight", 2),
      ]);
      expect(await valuesOf(targets, "dec.bias")).toEqual([sourceValue("dec.bias", 0)]);
    });

    it("added input variables: the old columns are copied, the new ones keep their init", async () => {
      const { checkpoint } = sourceCheckpoint();
      const targets = await tinyTargets({ decls: tinyWith({ "enc.weight": { shape: [3, 4] } }) });
      const { report } = await load(checkpoint, targets, overlap());
      expect(report.plan!.entries[0]).toMatchObject({ target: "enc.weight", overlap: [3, 2] });
      expect(await valuesOf(targets, "enc.weight")).toEqual(
        overlapExpectation("enc.weight", [3, 2], [3, 4]),
      );
    });

    it("more rows and fewer columns at once: the block is the per-dimension minimum", async () => {
      const { checkpoint } = sourceCheckpoint();
      const targets = await tinyTargets({ decls: tinyWith({ "dec.weight": { shape: [3, 2] } }) });
      await load(checkpoint, targets, overlap());
      expect(await valuesOf(targets, "dec.weight")).toEqual(
        overlapExpectation("dec.weight", [2, 3], [3, 2]),
      );
    });

    it("a 4-d kernel with an added input channel, checked element by element", async () => {
      // conv [out 2, in 2, 2, 2] in the checkpoint; the model's conv takes 3 input channels.
      const conv = { name: "conv.weight", dtype: "float32", kind: "parameter" } as const;
      const { checkpoint } = sourceCheckpoint({ decls: [{ ...conv, shape: [2, 2, 2, 2] }] });
      const targets = await tinyTargets({ decls: [{ ...conv, shape: [2, 3, 2, 2] }] });
      await load(checkpoint, targets, overlap());
      const got = await valuesOf(targets, "conv.weight");
      let checked = 0;
      for (let o = 0; o < 2; o++) {
        for (let i = 0; i < 3; i++) {
          for (let h = 0; h < 2; h++) {
            for (let w = 0; w < 2; w++) {
              const t = ((o * 3 + i) * 2 + h) * 2 + w;
              const s = ((o * 2 + i) * 2 + h) * 2 + w;
              const want = i < 2 ? sourceValue("conv.weight", s) : targetValue("conv.weight", t);
              expect(got[t]).toBe(want);
              checked++;
            }
          }
        }
      }
      expect(checked).toBe(24);
    });

    it("complex values are copied whole (real and imaginary parts together)", async () => {
      // (1+2i) (3+4i) / (5+6i) (7+8i): rows grow from 2 to 3, columns shrink from 2 to 1.
      const { checkpoint } = stateDictCheckpoint([
        { key: "c", values: [1, 2, 3, 4, 5, 6, 7, 8], shape: [2, 2], dtype: "complex64" },
      ]);
      const model = new MemoryModel([
        { name: "c", shape: [3, 1], dtype: "complex64", value: new Float32Array(6).fill(-1) },
      ]);
      await load(checkpoint, { model }, overlap());
      expect(Array.from((await model.read("c")) as Float32Array)).toEqual([1, 2, 5, 6, -1, -1]);
    });

    it("a dtype packing two values a byte cannot be cut: the load fails, changing nothing", async () => {
      // float4 [4] is two bytes; tensorIn fills as many bytes as the array has.
      const { checkpoint } = stateDictCheckpoint([
        { key: "q", values: [0x12, 0x34, 0, 0], shape: [4], dtype: "float4_e2m1" },
      ]);
      const model = new MemoryModel([
        { name: "q", shape: [6], dtype: "float4_e2m1", value: Uint8Array.of(7, 8, 9) },
      ]);
      const error = await rejection(load(checkpoint, { model }, overlap()));
      expect(error.code).toBe("OVERLAP_PACKED");
      expect(Array.from((await model.read("q")) as Uint8Array)).toEqual([7, 8, 9]);
    });

    it("tensors of different rank cannot overlap: skipped, and said so", async () => {
      const { checkpoint } = sourceCheckpoint();
      const targets = await tinyTargets({ decls: tinyWith({ "enc.weight": { shape: [6] } }) });
      const { report } = await load(checkpoint, targets, overlap());
      expect(report.plan!.entries[0]).toMatchObject({
        action: "skip",
        overlap: null,
        reason:
          "shape mismatch (checkpoint [3, 2] vs model [6]); ranks differ, so no overlap can be copied",
      });
      expect(await valuesOf(targets, "enc.weight")).toEqual(
        expected("enc.weight", [6], targetValue),
      );
    });
  });

  it("freeze_loaded freezes what was loaded: not the skipped, not the buffers", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets({ decls: WIDER_HEAD });
    const { report } = await load(
      checkpoint,
      targets,
      loading("transfer_learning", { freeze_loaded: true }),
    );
    const frozen = report.plan!.entries.filter((e) => e.frozen).map((e) => e.target);
    expect(frozen).toEqual(["enc.weight", "enc.bias", "bn.weight", "bn.bias"]);
    const trainable = Object.fromEntries(
      targets.model.parameters().map((p) => [p.name, p.trainable]),
    );
    expect(trainable).toEqual({
      "enc.weight": false,
      "enc.bias": false,
      "bn.weight": false,
      "bn.bias": false,
      "bn.running_mean": false,
      "bn.num_batches_tracked": false,
      "dec.weight": true,
      "dec.bias": true,
    });
  });

  it("freeze freezes named parts whether loaded or not (dotted prefixes and globs)", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets({ decls: WIDER_HEAD });
    const { report } = await load(
      checkpoint,
      targets,
      loading("transfer_learning", { freeze: ["dec", "*.bias"] }),
    );
    const frozen = report.plan!.entries.filter((e) => e.frozen).map((e) => e.target);
    expect(frozen).toEqual(["enc.bias", "bn.bias", "dec.weight", "dec.bias"]);
    expect(
      targets.model
        .parameters()
        .filter((p) => !p.trainable && p.kind === "parameter")
        .map((p) => p.name),
    ).toEqual(frozen);
  });

  it("a freeze pattern that matches no parameter is an error", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets();
    const before = snapshotOf(targets);
    const error = await rejection(
      load(checkpoint, targets, loading("transfer_learning", { freeze: ["decoder"] })),
    );
    expect(error.message).toContain("freeze pattern 'decoder' matches no parameter of the model");
    expectUnchanged(targets, before);
  });

  it("a parameter frozen before the load is reported frozen and stays so", async () => {
    const { checkpoint } = sourceCheckpoint();
    const targets = await tinyTargets({ frozen: ["enc.weight"] });
    const { report } = await load(checkpoint, targets, loading("transfer_learning"));
    expect(report.plan!.entries[0]).toMatchObject({ target: "enc.weight", frozen: true });
    expect(targets.model.parameters()[0]!.trainable).toBe(false);
    expect(await valuesOf(targets, "enc.weight")).toEqual(
      expected("enc.weight", [3, 2], sourceValue),
    );
  });

  it("keeps parameters the checkpoint lacks and reports keys the model lacks, without failing", async () => {
    const { checkpoint } = sourceCheckpoint({
      decls: tinyWith({}, [
        { name: "aux.weight", shape: [2], dtype: "float32", kind: "parameter" },
      ]).filter((d) => !d.name.startsWith("enc.")),
    });
    const targets = await tinyTargets();
    const { report } = await load(checkpoint, targets, loading("transfer_learning"));
    const plan = report.plan!;
    expect(plan.entries.slice(0, 2).map((e) => [e.target, e.action, e.reason])).toEqual([
      ["enc.weight", "keep", "not in the checkpoint; keeps its current value"],
      ["enc.bias", "keep", "not in the checkpoint; keeps its current value"],
    ]);
    expect(plan.unexpected.map((u) => u.source)).toEqual(["aux.weight"]);
    expect(await valuesOf(targets, "enc.bias")).toEqual(expected("enc.bias", [3], targetValue));
  });
});
