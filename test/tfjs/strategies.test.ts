import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { Checkpoint } from "../../src/checkpoint/checkpoint.js";
import type { FaultInjection } from "../../src/targets/memory.js";
import { MemoryScheduler } from "../../src/targets/memory.js";
import { planTfjsLoad, runTfjsLoad } from "../../src/tfjs/load.js";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { tfjsOptimizerTarget } from "../../src/tfjs/optimizer-target.js";
import {
  buildNet,
  config,
  netData,
  openFixture,
  saveToMemory,
  snapshot,
  torchFixture,
  useBackend,
} from "./helpers.js";

let data10: { x: tf.Tensor; y: tf.Tensor };
let data12: { x: tf.Tensor; y: tf.Tensor };

// Training convolutions needs the cpu backend (wasm has no Conv2DBackpropFilter kernel).
beforeAll(async () => {
  await useBackend("cpu");
  data10 = netData(10);
  data12 = netData(12);
});

const LOADED = [
  "conv/kernel",
  "conv/bias",
  "bn/gamma",
  "bn/beta",
  "fc/kernel",
  "fc/bias",
  "norm/gamma",
  "norm/beta",
];

/** What PyTorch's seed-0 Net weights are in tfjs, read through a plain weights_only load. */
async function pytorchWeights(): Promise<Map<string, Float32Array>> {
  const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
  const model = buildNet();
  const target = tfjsModelTarget(model);
  await runTfjsLoad({
    checkpoint,
    targets: { model: target },
    config: config({ type: "weights_only" }),
    pytorch: true,
  });
  const values = new Map<string, Float32Array>();
  for (const p of target.parameters())
    values.set(p.name, (await target.read(p.name)) as Float32Array);
  model.dispose();
  await checkpoint.close();
  return values;
}

describe("transfer_learning from PyTorch into a model with another head", () => {
  it("loads what fits, freezes it, and only the rest trains (with or without a recompile)", async () => {
    const expected = await pytorchWeights();
    for (const recompile of [false, true]) {
      const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
      const model = buildNet({ classes: 12, seed: 3 });
      const optimizer = tf.train.adam(0.01);
      model.compile({ optimizer, loss: "categoricalCrossentropy" });
      // The optimizer already has slots for every weight: freezing must move them.
      await model.trainOnBatch(data12.x, data12.y);
      const target = tfjsModelTarget(model);
      const { report } = await runTfjsLoad({
        checkpoint,
        targets: { model: target, optimizer: tfjsOptimizerTarget(optimizer, model) },
        config: config({ type: "transfer_learning", freeze_loaded: true }),
        pytorch: true,
      });
      const plan = report.plan!;
      const actions = Object.fromEntries(plan.entries.map((e) => [e.target, e.action]));
      expect(actions["head/kernel"]).toBe("skip");
      expect(actions["head/bias"]).toBe("skip");
      expect(plan.entries.filter((e) => e.frozen).map((e) => e.target)).toEqual(LOADED);
      expect(plan.optimizer?.action).toBe("reset");
      const trainable = target
        .parameters()
        .filter((p) => p.trainable)
        .map((p) => p.name);
      expect(trainable).toEqual(["head/kernel", "head/bias"]);
      if (recompile) model.compile({ optimizer, loss: "categoricalCrossentropy" });
      const head = await target.read("head/kernel");
      for (let i = 0; i < 3; i++) await model.trainOnBatch(data12.x, data12.y);
      for (const name of LOADED) expect(await target.read(name)).toEqual(expected.get(name));
      expect(await target.read("head/kernel")).not.toEqual(head);
      model.dispose();
      await checkpoint.close();
    }
  });
});

describe("cold_start with reset_layers", () => {
  it("re-initialises exactly those layers, with their own initialisers", async () => {
    const expected = await pytorchWeights();
    const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
    const model = buildNet({ seed: 21 });
    const target = tfjsModelTarget(model);
    const initial = new Map<string, Float32Array>();
    for (const p of target.parameters())
      initial.set(p.name, (await target.read(p.name)) as Float32Array);
    // Change the head so "re-initialised" is not "left alone".
    await target.write(new Map([["head/kernel", new Float32Array(160).fill(3)]]));
    const { report } = await runTfjsLoad({
      checkpoint,
      targets: { model: target },
      config: config({ type: "cold_start", reset_layers: ["head/*"] }),
      pytorch: true,
    });
    const resets = report.plan!.entries.filter((e) => e.action === "reset").map((e) => e.target);
    expect(resets).toEqual(["head/kernel", "head/bias"]);
    expect(await target.read("head/kernel")).toEqual(initial.get("head/kernel"));
    expect(await target.read("head/bias")).toEqual(initial.get("head/bias"));
    for (const p of target.parameters()) {
      if (!p.name.startsWith("head/"))
        expect(await target.read(p.name)).toEqual(expected.get(p.name));
    }
    model.dispose();
    await checkpoint.close();
  });
});

describe("a failed load leaves the tfjs model and optimizer exactly as they were", () => {
  interface Setup {
    model: tf.LayersModel;
    optimizer: tf.Optimizer;
    scheduler: MemoryScheduler;
  }

  async function setup(faults: FaultInjection): Promise<Setup> {
    const optimizer = tf.train.adam(0.02);
    const model = buildNet({ seed: 40 });
    model.compile({ optimizer, loss: "categoricalCrossentropy" });
    await model.trainOnBatch(data10.x, data10.y);
    const scheduler = new MemoryScheduler(
      "StepLR",
      { last_epoch: 0, base_lrs: [0.02] },
      { faults },
    );
    return { model, optimizer, scheduler };
  }

  /** A tfjs run of the same Net, saved: something warm_start can load. */
  async function tfjsCheckpoint(): Promise<Checkpoint> {
    const optimizer = tf.train.adam(0.01);
    const model = buildNet({ seed: 41 });
    model.compile({ optimizer, loss: "categoricalCrossentropy" });
    await model.trainOnBatch(data10.x, data10.y);
    const scheduler = new MemoryScheduler("StepLR", { last_epoch: 4, base_lrs: [0.01] });
    const checkpoint = await saveToMemory({
      model,
      optimizer,
      scheduler,
      state: { epoch: 1, globalStep: 1, bestMetric: null, metricsHistory: [] },
    });
    model.dispose();
    return checkpoint;
  }

  const cases: {
    name: string;
    raw: Record<string, unknown>;
    fault: { target: "model" | "optimizer" | "scheduler"; op: string };
    pytorch: boolean;
  }[] = [
    {
      name: "weights_only (freezing fails after the weights were written)",
      raw: { type: "weights_only", freeze: ["fc/*"] },
      fault: { target: "model", op: "setTrainable" },
      pytorch: true,
    },
    {
      name: "transfer_learning (the optimizer reset fails after weights and freezing)",
      raw: { type: "transfer_learning", freeze_loaded: true },
      fault: { target: "optimizer", op: "reset" },
      pytorch: true,
    },
    {
      name: "cold_start (the optimizer reset fails after weights and re-initialisation)",
      raw: { type: "cold_start", reset_layers: ["head/*"], freeze: ["conv/*"] },
      fault: { target: "optimizer", op: "reset" },
      pytorch: true,
    },
    {
      name: "warm_start (the scheduler fails after weights and optimizer state)",
      raw: { type: "warm_start" },
      fault: { target: "scheduler", op: "setState" },
      pytorch: false,
    },
  ];

  for (const { name, raw, fault, pytorch } of cases) {
    it(name, async () => {
      const faults: FaultInjection = { failOn: (op, key) => op === fault.op && key === undefined };
      const { model, optimizer, scheduler } = await setup(
        fault.target === "scheduler" ? faults : { failOn: () => false },
      );
      const targets = {
        model: tfjsModelTarget(model, fault.target === "model" ? { faults } : {}),
        optimizer: tfjsOptimizerTarget(
          optimizer,
          model,
          fault.target === "optimizer" ? { faults } : {},
        ),
        scheduler,
      };
      const checkpoint = pytorch
        ? await openFixture(torchFixture("net_state_dict.pt"))
        : await tfjsCheckpoint();
      const plan = await planTfjsLoad({ checkpoint, targets, config: config(raw), pytorch });
      expect(plan.violations).toEqual([]);
      const before = snapshot(model, optimizer);
      const schedulerBefore = scheduler.getState();
      await expect(
        runTfjsLoad({ checkpoint, targets, config: config(raw), pytorch }),
      ).rejects.toMatchObject({
        code: "INJECTED_FAULT",
      });
      expect(snapshot(model, optimizer)).toEqual(before);
      expect(scheduler.getState()).toEqual(schedulerBefore);
      // And training goes on as if nothing happened.
      await model.trainOnBatch(data10.x, data10.y);
      model.dispose();
      await checkpoint.close();
    });
  }

  it("an impossible plan (warm_start from weights without optimizer state) changes nothing", async () => {
    const { model, optimizer, scheduler } = await setup({ failOn: () => false });
    const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
    const targets = {
      model: tfjsModelTarget(model),
      optimizer: tfjsOptimizerTarget(optimizer, model),
      scheduler,
    };
    const before = snapshot(model, optimizer);
    await expect(
      runTfjsLoad({ checkpoint, targets, config: config({ type: "warm_start" }), pytorch: true }),
    ).rejects.toMatchObject({ code: "PLAN_VIOLATIONS" });
    expect(snapshot(model, optimizer)).toEqual(before);
    model.dispose();
    await checkpoint.close();
  });
});
