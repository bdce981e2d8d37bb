import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCheckpointFile } from "../../src/node.js";
import { readTrainingState } from "../../src/state/read-training-state.js";
import type { TrainingState } from "../../src/state/training-state.js";
import { MemoryScheduler } from "../../src/targets/memory.js";
import { runTfjsLoad } from "../../src/tfjs/load.js";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { tfjsOptimizerTarget } from "../../src/tfjs/optimizer-target.js";
import { saveTrainingCheckpoint } from "../../src/tfjs/save-node.js";
import { buildNet, config, netData, saveToMemory, snapshot, useBackend } from "./helpers.js";

/**
 * Resume equivalence: N steps, save, warm_start into a fresh model and optimizer, M more steps
 * give bit for bit the weights and losses of N + M steps straight through (cpu backend).
 */

const N = 3;
const M = 3;
let data: { x: tf.Tensor; y: tf.Tensor };

beforeAll(async () => {
  await useBackend("cpu");
  data = netData(10);
});

function compiledNet(seed: number, optimizer: tf.Optimizer) {
  const model = buildNet({ seed });
  model.compile({ optimizer, loss: "categoricalCrossentropy" });
  return model;
}

async function train(model: tf.LayersModel, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await model.trainOnBatch(data.x, data.y)) as number);
  return losses;
}

function scheduler(lastEpoch: number) {
  return new MemoryScheduler("StepLR", {
    step_size: 2,
    gamma: 0.5,
    base_lrs: [0.01],
    last_epoch: lastEpoch,
    _step_count: lastEpoch + 1,
    _last_lr: [0.01 * 0.5 ** Math.floor(lastEpoch / 2)],
  });
}

describe("resume equivalence (tfjs → checkpoint → tfjs)", () => {
  it("gives bit for bit the weights and losses of training straight through", async () => {
    const straightOptimizer = tf.train.adam(0.01);
    const straight = compiledNet(1, straightOptimizer);
    const straightLosses = await train(straight, N + M);

    const firstOptimizer = tf.train.adam(0.01);
    const first = compiledNet(1, firstOptimizer);
    const firstLosses = await train(first, N);
    expect(firstLosses).toEqual(straightLosses.slice(0, N));
    const state: TrainingState = {
      epoch: 1,
      globalStep: N,
      bestMetric: Math.min(...firstLosses),
      metricsHistory: firstLosses.map((value, step) => ({ step, name: "loss", value })),
    };
    const checkpoint = await saveToMemory({
      model: first,
      optimizer: firstOptimizer,
      scheduler: scheduler(N),
      state,
    });

    // A fresh model (other initial weights) and a fresh optimizer (other hyperparameters).
    const resumedOptimizer = tf.train.adam(0.5, 0.8, 0.9);
    const resumed = compiledNet(2, resumedOptimizer);
    const resumedScheduler = scheduler(0);
    const { trainingState, report } = await runTfjsLoad({
      checkpoint,
      targets: {
        model: tfjsModelTarget(resumed),
        optimizer: tfjsOptimizerTarget(resumedOptimizer, resumed),
        scheduler: resumedScheduler,
      },
      config: config({ type: "warm_start" }),
    });
    expect(report.plan!.optimizer).toMatchObject({ action: "restore", mapping: "param_names" });
    expect(report.plan!.entries.every((e) => e.action === "load" && e.source === e.target)).toBe(
      true,
    );
    expect(report.warnings).toEqual([
      "optimizer: lr 0.5 → 0.01",
      "optimizer: betas [0.8,0.9] → [0.9,0.999]",
    ]);
    expect(trainingState).toEqual(state);
    expect(resumedScheduler.getState()).toEqual(scheduler(N).getState());

    const resumedLosses = await train(resumed, M);
    expect(resumedLosses).toEqual(straightLosses.slice(N));
    const a = snapshot(resumed, resumedOptimizer);
    const b = snapshot(straight, straightOptimizer);
    expect(a.weights).toEqual(b.weights);
    expect(a.optimizer).toEqual(b.optimizer);
    straight.dispose();
    first.dispose();
    resumed.dispose();
    await checkpoint.close();
  });
});

describe("saveTrainingCheckpoint (Node)", () => {
  const folder = mkdtempSync(join(tmpdir(), "loadout-tfjs-"));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it("writes the file atomically, in the layout loadout reads back", async () => {
    const optimizer = tf.train.momentum(0.01, 0.9);
    const model = compiledNet(4, optimizer);
    await train(model, 1);
    const path = join(folder, "run.ckpt");
    const state = { epoch: 2, globalStep: 7, bestMetric: null, metricsHistory: [] };
    await saveTrainingCheckpoint(path, { model, optimizer, state });
    expect(readdirSync(folder)).toEqual(["run.ckpt"]);
    const checkpoint = await openCheckpointFile(path);
    const stateDict = checkpoint.stateDict()!;
    expect(stateDict.path).toEqual(["state_dict"]);
    expect([...stateDict.tensors.keys()]).toEqual(
      tfjsModelTarget(model)
        .parameters()
        .map((p) => p.name),
    );
    expect(stateDict.tensors.get("conv/kernel")!.shape).toEqual([3, 3, 3, 8]);
    expect([...(await stateDict.tensors.get("head/bias")!.read())]).toEqual([
      ...(await tfjsModelTarget(model).read("head/bias")),
    ]);
    expect((await readTrainingState(checkpoint)).state).toEqual(state);
    await checkpoint.close();
    model.dispose();
  });
});
