import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { buildNet, snapshot, useBackend } from "./helpers.js";

beforeAll(() => useBackend("wasm"));

function smallModel(constraint = false) {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        name: "fc",
        inputShape: [3],
        units: 2,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }),
        kernelConstraint: constraint ? tf.constraints.nonNeg() : undefined,
      }),
      tf.layers.batchNormalization({ name: "bn" }),
      tf.layers.dense({
        name: "head",
        units: 1,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 12 }),
      }),
    ],
  });
}

describe("tfjsModelTarget: names, kinds, dtypes", () => {
  it("names weights `<layer>/<weight>` from originalName, the same in every model instance", () => {
    const first = smallModel();
    const second = smallModel();
    // tfjs makes `.name` unique in the process: the second model's weights get suffixes.
    expect(second.getLayer("fc").weights[0]!.name).not.toBe(first.getLayer("fc").weights[0]!.name);
    const names = (m: tf.LayersModel) =>
      tfjsModelTarget(m)
        .parameters()
        .map((p) => p.name);
    expect(names(first)).toEqual([
      "fc/kernel",
      "fc/bias",
      "bn/gamma",
      "bn/beta",
      "bn/moving_mean",
      "bn/moving_variance",
      "head/kernel",
      "head/bias",
    ]);
    expect(names(second)).toEqual(names(first));
    first.dispose();
    second.dispose();
  });

  it("reports BatchNorm's moving statistics as buffers and shapes as tfjs has them", () => {
    const model = smallModel();
    const params = new Map(
      tfjsModelTarget(model)
        .parameters()
        .map((p) => [p.name, p]),
    );
    expect(params.get("fc/kernel")).toEqual({
      name: "fc/kernel",
      shape: [3, 2],
      dtype: "float32",
      trainable: true,
      kind: "parameter",
    });
    expect(params.get("bn/moving_mean")).toMatchObject({ kind: "buffer", trainable: false });
    model.dispose();
  });

  it("names the layers of a nested model by their path", () => {
    const inner = tf.sequential({
      name: "backbone",
      layers: [tf.layers.dense({ name: "fc", inputShape: [4], units: 3 })],
    });
    const model = tf.sequential({ layers: [inner, tf.layers.dense({ name: "out", units: 1 })] });
    expect(
      tfjsModelTarget(model)
        .parameters()
        .map((p) => p.name),
    ).toEqual(["backbone/fc/kernel", "backbone/fc/bias", "out/kernel", "out/bias"]);
    model.dispose();
  });
});

describe("tfjsModelTarget: read and write", () => {
  it("reads copies and writes all-or-nothing, with an Undo that restores exactly", async () => {
    const model = smallModel();
    const target = tfjsModelTarget(model);
    const copy = (await target.read("fc/kernel")) as Float32Array;
    copy.fill(99);
    expect([...(await target.read("fc/kernel"))]).not.toContain(99);
    const before = snapshot(model);
    await expect(
      target.write(
        new Map([
          ["fc/kernel", new Float32Array(6).fill(1)],
          ["head/kernel", new Float32Array(3)],
        ]),
      ),
    ).rejects.toMatchObject({ code: "BAD_VALUE", key: "head/kernel" });
    await expect(target.write(new Map([["fc/nope", new Float32Array(1)]]))).rejects.toMatchObject({
      code: "UNKNOWN_PARAMETER",
    });
    await expect(target.write(new Map([["fc/bias", new Int32Array(2)]]))).rejects.toMatchObject({
      code: "BAD_VALUE",
    });
    expect(snapshot(model)).toEqual(before);
    const tensors = tf.memory().numTensors;
    const undo = await target.write(
      new Map([
        ["fc/kernel", Float32Array.of(1, 2, 3, 4, 5, 6)],
        ["bn/moving_variance", Float32Array.of(2, 3)],
      ]),
    );
    expect([...(await target.read("fc/kernel"))]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...(await target.read("bn/moving_variance"))]).toEqual([2, 3]);
    await undo();
    expect(snapshot(model)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });

  it("loads values as they are: a weight's constraint is not applied", async () => {
    const model = smallModel(true);
    const target = tfjsModelTarget(model);
    await target.write(new Map([["fc/kernel", Float32Array.of(-1, 2, -3, 4, -5, 6)]]));
    expect([...(await target.read("fc/kernel"))]).toEqual([-1, 2, -3, 4, -5, 6]);
    model.dispose();
  });

  it("fails injected faults before changing anything", async () => {
    const model = smallModel();
    const target = tfjsModelTarget(model, {
      faults: { failOn: (op, name) => op === "write" && name === "head/bias" },
    });
    const before = snapshot(model);
    await expect(
      target.write(
        new Map([
          ["fc/bias", Float32Array.of(1, 1)],
          ["head/bias", Float32Array.of(1)],
        ]),
      ),
    ).rejects.toMatchObject({ code: "INJECTED_FAULT" });
    expect(snapshot(model)).toEqual(before);
    model.dispose();
  });
});

describe("tfjsModelTarget: freezing", () => {
  it("freezes one weight or a whole layer, and its Undo restores every flag", async () => {
    const model = smallModel();
    const target = tfjsModelTarget(model);
    const before = snapshot(model);
    const undoOne = await target.setTrainable(["fc/kernel"], false);
    const trainable = () =>
      target
        .parameters()
        .filter((p) => p.trainable)
        .map((p) => p.name);
    expect(trainable()).toEqual(["fc/bias", "bn/gamma", "bn/beta", "head/kernel", "head/bias"]);
    expect(model.getLayer("fc").trainable).toBe(true);
    const undoLayer = await target.setTrainable(["fc/bias"], false);
    expect(model.getLayer("fc").trainable).toBe(false);
    expect(trainable()).toEqual(["bn/gamma", "bn/beta", "head/kernel", "head/bias"]);
    await undoLayer();
    await undoOne();
    expect(snapshot(model)).toEqual(before);
    await expect(target.setTrainable(["bn/moving_mean"], true)).rejects.toMatchObject({
      code: "TRAINABLE_BUFFER",
    });
    model.dispose();
  });

  it("freezes an LSTM's weights, which its cell holds", async () => {
    const model = tf.sequential({
      layers: [tf.layers.lstm({ name: "lstm", inputShape: [4, 2], units: 3 })],
    });
    const target = tfjsModelTarget(model);
    expect(target.parameters().map((p) => p.name)).toEqual([
      "lstm/kernel",
      "lstm/recurrent_kernel",
      "lstm/bias",
    ]);
    await target.setTrainable(["lstm/bias"], false);
    expect(model.trainableWeights.map((w) => w.originalName)).toEqual([
      "lstm/kernel",
      "lstm/recurrent_kernel",
    ]);
    await target.setTrainable(["lstm/kernel", "lstm/recurrent_kernel"], false);
    expect(model.trainableWeights).toEqual([]);
    await target.setTrainable(["lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"], true);
    expect(model.trainableWeights).toHaveLength(3);
    model.dispose();
  });
});

describe("tfjsModelTarget: initial values", () => {
  it("gives each weight what its own initialiser gave at construction (seeded)", async () => {
    const model = buildNet({ seed: 5 });
    const target = tfjsModelTarget(model);
    const built = new Map(
      await Promise.all(
        ["conv/kernel", "conv/bias", "fc/kernel", "head/kernel", "head/bias"].map(
          async (n) => [n, await target.read(n)] as const,
        ),
      ),
    );
    const fresh = await target.initialValues!([...built.keys(), "bn/moving_variance", "norm/beta"]);
    for (const [name, value] of built) expect(fresh.get(name)).toEqual(value);
    expect([...fresh.get("bn/moving_variance")!]).toEqual(new Array(8).fill(1));
    expect([...fresh.get("norm/beta")!]).toEqual(new Array(16).fill(0));
    model.dispose();
  });

  it("starts an LSTM's forget-gate bias at 1 (unitForgetBias), the rest from biasInitializer", async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.lstm({
          name: "lstm",
          inputShape: [4, 2],
          units: 2,
          unitForgetBias: true,
          biasInitializer: tf.initializers.constant({ value: 0.5 }),
        }),
      ],
    });
    const target = tfjsModelTarget(model);
    const fresh = await target.initialValues!(["lstm/bias"]);
    expect([...fresh.get("lstm/bias")!]).toEqual([0.5, 0.5, 1, 1, 0.5, 0.5, 0.5, 0.5]);
    expect(fresh.get("lstm/bias")).toEqual(await target.read("lstm/bias"));
    model.dispose();
  });

  it("refuses to re-initialise a weight whose layer has no initialiser for it", async () => {
    class Scale extends tf.layers.Layer {
      static className = "Scale";
      override build() {
        this.addWeight("factor", [1], "float32", tf.initializers.ones());
        this.built = true;
      }
    }
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [2], units: 1 }), new Scale({ name: "scale" })],
    });
    await expect(tfjsModelTarget(model).initialValues!(["scale/factor"])).rejects.toMatchObject({
      code: "NO_INITIALIZER",
      key: "scale/factor",
    });
    model.dispose();
  });
});
