import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  findOptimizerStates,
  parseTorchOptimizerState,
  toOptimizerState,
} from "../../src/state/torch-optimizer.js";
import type { OptimizerState } from "../../src/targets/types.js";
import { variableField } from "../../src/tfjs/internals.js";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { slotFieldsOf } from "../../src/tfjs/optimizer-slots.js";
import { adamBetaPower, tfjsOptimizerTarget } from "../../src/tfjs/optimizer-target.js";
import { mapPytorchStateDict } from "../../src/tfjs/pytorch-mapping.js";
import {
  openFixture,
  readJson,
  snapshot,
  tfjsFixture,
  torchFixture,
  useBackend,
} from "./helpers.js";

let data: { x: tf.Tensor; y: tf.Tensor };

// Bit-exact comparisons of training steps: the cpu backend.
beforeAll(async () => {
  await useBackend("cpu");
  data = tf.tidy(() => ({
    x: tf.keep(tf.randomNormal([6, 3], 0, 1, "float32", 3)),
    y: tf.keep(tf.randomNormal([6, 2], 0, 1, "float32", 4)),
  }));
});

const KINDS = {
  adam: () => tf.train.adam(0.01, 0.9, 0.99),
  sgd: () => tf.train.sgd(0.05),
  momentum: () => tf.train.momentum(0.05, 0.8, true),
  rmsprop: () => tf.train.rmsprop(0.01, 0.85, 0.5, 1e-6, true),
  adagrad: () => tf.train.adagrad(0.1, 0.2),
} as const;

function smallModel(seed: number) {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        name: "fc",
        inputShape: [3],
        units: 4,
        activation: "tanh",
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.batchNormalization({ name: "bn" }),
      tf.layers.dense({
        name: "head",
        units: 2,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
}

async function train(model: tf.LayersModel, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await model.trainOnBatch(data.x, data.y)) as number);
  return losses;
}

function compiled(seed: number, optimizer: tf.Optimizer) {
  const model = smallModel(seed);
  model.compile({ optimizer, loss: "meanSquaredError" });
  return model;
}

describe("tfjsOptimizerTarget: state by parameter name, in PyTorch's terms", () => {
  it("describes a trained Adam as PyTorch would: exp_avg, exp_avg_sq, step, lr, betas, eps", async () => {
    const optimizer = KINDS.adam();
    const model = compiled(1, optimizer);
    await train(model, 3);
    const state = tfjsOptimizerTarget(optimizer, model).getState();
    expect(state.type).toBe("adam");
    expect(state.groups).toEqual([
      {
        params: ["fc/kernel", "fc/bias", "bn/gamma", "bn/beta", "head/kernel", "head/bias"],
        hyper: { lr: 0.01, betas: [0.9, 0.99], eps: 1e-7 },
      },
    ]);
    const kernel = state.state.get("fc/kernel")!;
    expect(kernel.scalars).toEqual({ step: 3 });
    expect([...kernel.tensors.keys()]).toEqual(["exp_avg", "exp_avg_sq"]);
    const weights = await optimizer.getWeights();
    // tfjs's own order: iterations, then every m, then every v.
    expect([...kernel.tensors.get("exp_avg")!]).toEqual([...weights[1]!.tensor.dataSync()]);
    expect([...kernel.tensors.get("exp_avg_sq")!]).toEqual([...weights[7]!.tensor.dataSync()]);
    expect(state.state.has("bn/moving_mean")).toBe(false);
    model.dispose();
  });

  for (const [kind, make] of Object.entries(KINDS)) {
    it(`${kind}: a restored optimizer takes bit for bit the steps the saved one takes`, async () => {
      const optimizer = make();
      const model = compiled(1, optimizer);
      await train(model, 3);
      const state = tfjsOptimizerTarget(optimizer, model).getState();

      const copyOptimizer = make();
      const copy = compiled(9, copyOptimizer);
      const source = tfjsModelTarget(model);
      const values = new Map(
        await Promise.all(
          source.parameters().map(async (p) => [p.name, await source.read(p.name)] as const),
        ),
      );
      await tfjsModelTarget(copy).write(values);
      await tfjsOptimizerTarget(copyOptimizer, copy).setState(state);
      expect(copyOptimizer.iterations).toBe(3);
      if (kind === "adam") {
        expect(variableField(copyOptimizer, "accBeta1")!.dataSync()[0]).toBe(
          variableField(optimizer, "accBeta1")!.dataSync()[0],
        );
        expect(variableField(copyOptimizer, "accBeta1")!.dataSync()[0]).toBe(adamBetaPower(0.9, 3));
      }
      expect(await train(copy, 2)).toEqual(await train(model, 2));
      expect(snapshot(copy, copyOptimizer).weights).toEqual(snapshot(model, optimizer).weights);
      model.dispose();
      copy.dispose();
    });
  }

  it("names each kind's slots as documented", async () => {
    const slots: Record<string, string[]> = {};
    for (const [kind, make] of Object.entries(KINDS)) {
      const optimizer = make();
      const model = compiled(1, optimizer);
      await train(model, 1);
      const state = tfjsOptimizerTarget(optimizer, model).getState();
      slots[kind] = [...(state.state.get("head/kernel")?.tensors.keys() ?? [])];
      model.dispose();
    }
    expect(slots).toEqual({
      adam: ["exp_avg", "exp_avg_sq"],
      sgd: [],
      momentum: ["momentum_buffer"],
      rmsprop: ["square_avg", "scaled_momentum_buffer", "grad_avg"],
      adagrad: ["sum"],
    });
  });
});

describe("tfjsOptimizerTarget: from PyTorch's optimizers", () => {
  interface Values {
    shape: number[];
    values: number[];
  }
  interface Steps {
    cases: Record<
      string,
      { file: string; grads: Record<string, Values>; after: Record<string, Values> }
    >;
  }
  const steps = readJson<Steps>(tfjsFixture("optimizer_steps.json")).cases;
  const transpose = (v: Values) => [0, 1, 2].flatMap((i) => [v.values[i]!, v.values[3 + i]!]);

  const cases = [
    ["adam", () => tf.train.adam(0.5)],
    ["adamw", () => tf.train.adam(0.5)],
    ["sgd_momentum", () => tf.train.momentum(0.5, 0.1)],
  ] as const;
  for (const [name, make] of cases) {
    it(`${name}: the 4th step from PyTorch's state is PyTorch's 4th step`, async () => {
      const testCase = steps[name]!;
      const checkpoint = await openFixture(tfjsFixture(testCase.file));
      const model = tf.sequential({
        layers: [tf.layers.dense({ name: "fc", inputShape: [3], units: 2 })],
      });
      const optimizer = make();
      // Weights and optimizer state through the mapping's layouts (kernel = weight transposed).
      const mapped = mapPytorchStateDict(checkpoint.stateDict()!.tensors, model);
      const values = new Map<string, Float32Array>();
      for (const target of ["fc/kernel", "fc/bias"]) {
        values.set(
          target,
          (await mapped.tensors.get(target)!.read({ dtype: "float32" })) as Float32Array,
        );
      }
      await tfjsModelTarget(model).write(values);
      const found = findOptimizerStates(checkpoint.root)[0]!;
      const parsed = parseTorchOptimizerState(found.value, found.path);
      const state: OptimizerState = await toOptimizerState(
        parsed,
        new Map([
          [0, "fc/kernel"],
          [1, "fc/bias"],
        ]),
        undefined,
        { dtype: "float32" },
      );
      const kernelMoments = state.state.get("fc/kernel")!.tensors;
      for (const [slot, array] of kernelMoments) {
        kernelMoments.set(slot, mapped.tensors.get("fc/kernel")!.transformLike!(array, "float32"));
      }
      const target = tfjsOptimizerTarget(optimizer, model);
      await target.setState(state);
      if (name !== "sgd_momentum") {
        expect(target.notes).toEqual([
          "lr 0.5 → 0.01",
          "betas [0.9,0.999] → [0.9,0.99]",
          "eps 1e-7 → 1e-8",
        ]);
        expect(optimizer.iterations).toBe(3);
      } else {
        expect(target.notes).toEqual(["lr 0.5 → 0.05", "momentum 0.1 → 0.9"]);
      }
      const [kernel, bias] = model.getLayer("fc").weights.map((w) => w.read() as tf.Variable);
      const grads: tf.NamedTensorMap = {
        [kernel!.name]: tf.tensor(transpose(testCase.grads["fc.weight"]!), [3, 2]),
        [bias!.name]: tf.tensor(testCase.grads["fc.bias"]!.values),
      };
      (optimizer as tf.Optimizer).applyGradients(grads);
      const kernelAfter = transpose(testCase.after["fc.weight"]!);
      const biasAfter = testCase.after["fc.bias"]!.values;
      const got = [...kernel!.dataSync(), ...bias!.dataSync()];
      const want = [...kernelAfter, ...biasAfter];
      for (const [i, value] of got.entries()) expect(Math.abs(value - want[i]!)).toBeLessThan(1e-6);
      tf.dispose(Object.values(grads));
      model.dispose();
      await checkpoint.close();
    });
  }

  it("refuses what tfjs cannot apply (AdamW's weight decay) unless allowed, changing nothing", async () => {
    const checkpoint = await openFixture(torchFixture("lightning.ckpt"));
    const found = findOptimizerStates(checkpoint.root)[0]!;
    const parsed = parseTorchOptimizerState(found.value, found.path);
    const model = tf.sequential({
      layers: [tf.layers.dense({ name: "fc", inputShape: [3], units: 2 })],
    });
    const names = new Map(
      parsed.groups[0]!.indices.map((i) => [i, i === 0 ? "fc/kernel" : "fc/bias"]),
    );
    const state = await toOptimizerState(parsed, names, undefined, { dtype: "float32" });
    // Only the hyperparameters matter here: keep no per-parameter state, two parameters.
    const hyperOnly: OptimizerState = {
      groups: [{ params: ["fc/kernel", "fc/bias"], hyper: state.groups[0]!.hyper }],
      state: new Map(),
    };
    const optimizer = tf.train.adam(0.1);
    const before = snapshot(model, optimizer);
    await expect(tfjsOptimizerTarget(optimizer, model).setState(hyperOnly)).rejects.toMatchObject({
      code: "OPTIMIZER_UNSUPPORTED_SETTING",
      key: "weight_decay",
    });
    expect(snapshot(model, optimizer)).toEqual(before);
    const lenient = tfjsOptimizerTarget(optimizer, model, { allowDropped: ["weight_decay"] });
    await lenient.setState(hyperOnly);
    expect(lenient.notes).toContain("weight_decay 0.01 dropped: tfjs adam has no such setting");
    model.dispose();
    await checkpoint.close();
  });
});

describe("tfjsOptimizerTarget: validation and Undo", () => {
  async function trained(kind: keyof typeof KINDS) {
    const optimizer = KINDS[kind]();
    const model = compiled(1, optimizer);
    await train(model, 2);
    return { model, optimizer, target: tfjsOptimizerTarget(optimizer, model) };
  }

  it("checks every name, slot, length and step count before changing anything", async () => {
    const { model, optimizer, target } = await trained("adam");
    const good = target.getState();
    const before = snapshot(model, optimizer);
    const variants: [string, (s: OptimizerState) => void, string][] = [
      ["unknown parameter", (s) => s.groups[0]!.params.push("nope/kernel"), "UNKNOWN_PARAMETER"],
      ["buffer", (s) => s.groups[0]!.params.push("bn/moving_mean"), "OPTIMIZER_BAD_STATE"],
      [
        "short moment",
        (s) => s.state.get("head/bias")!.tensors.set("exp_avg", new Float32Array(1)),
        "OPTIMIZER_BAD_STATE",
      ],
      [
        "foreign slot",
        (s) => s.state.get("head/bias")!.tensors.set("momentum_buffer", new Float32Array(2)),
        "OPTIMIZER_BAD_STATE",
      ],
      ["steps differ", (s) => (s.state.get("head/bias")!.scalars.step = 7), "OPTIMIZER_BAD_STATE"],
      [
        "groups differ",
        (s) => s.groups.push({ params: [], hyper: { ...s.groups[0]!.hyper, lr: 1 } }),
        "OPTIMIZER_BAD_STATE",
      ],
    ];
    for (const [, change, code] of variants) {
      const state = target.getState();
      change(state);
      await expect(target.setState(state)).rejects.toMatchObject({ code });
      expect(snapshot(model, optimizer)).toEqual(before);
    }
    await expect(target.setState(good)).resolves.toBeTypeOf("function");
    model.dispose();
  });

  it("reset and setState undo exactly, slots, iterations, powers and hyperparameters included", async () => {
    for (const kind of Object.keys(KINDS) as (keyof typeof KINDS)[]) {
      const { model, optimizer, target } = await trained(kind);
      const before = snapshot(model, optimizer);
      const tensors = tf.memory().numTensors;
      const undoReset = await target.reset();
      expect(optimizer.iterations).toBe(0);
      expect(target.getState().state.size).toBe(0);
      await undoReset();
      expect(snapshot(model, optimizer)).toEqual(before);
      const state = target.getState();
      state.groups[0]!.hyper.lr = 0.123;
      const undoSet = await target.setState(state);
      expect(target.getState().groups[0]!.hyper.lr).toBe(0.123);
      await undoSet();
      expect(snapshot(model, optimizer)).toEqual(before);
      // Every slot replaced was disposed: no tensor leaks.
      expect(tf.memory().numTensors).toBe(tensors);
      // And it still trains.
      await train(model, 1);
      model.dispose();
    }
  });

  it("refuses an injected fault before changing anything", async () => {
    const { model, optimizer } = await trained("momentum");
    const target = tfjsOptimizerTarget(optimizer, model, {
      faults: { failOn: (op) => op === "reset" },
    });
    const before = snapshot(model, optimizer);
    await expect(target.reset()).rejects.toMatchObject({ code: "INJECTED_FAULT" });
    expect(snapshot(model, optimizer)).toEqual(before);
    model.dispose();
  });

  it("refuses optimizers it does not restore", () => {
    const model = smallModel(1);
    expect(() => tfjsOptimizerTarget(tf.train.adamax(0.1), model)).toThrow(
      /does not restore tfjs Adamax/,
    );
    model.dispose();
  });

  it("takes no class name from an object's prototype for an optimizer's slots", () => {
    for (const name of ["constructor", "toString", "__proto__"]) {
      const optimizer = { getClassName: () => name } as unknown as tf.Optimizer;
      expect(() => slotFieldsOf(optimizer), name).toThrow(
        expect.objectContaining({ code: "UNSUPPORTED_OPTIMIZER" }),
      );
    }
  });
});
