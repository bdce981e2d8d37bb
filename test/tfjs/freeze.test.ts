import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { tfjsOptimizerTarget } from "../../src/tfjs/optimizer-target.js";
import { listModelWeights } from "../../src/tfjs/weights.js";
import { snapshot, useBackend } from "./helpers.js";

/**
 * tfjs keeps optimizer slots by position in the list of trainable weights. Freezing a layer and
 * recompiling with the same optimizer shifts the positions: the next step pairs the head's
 * weights with the first layer's slots and fails. loadout's setTrainable keeps them in step.
 */

let x: tf.Tensor;
let y: tf.Tensor;

beforeAll(async () => {
  await useBackend("wasm");
  x = tf.randomNormal([5, 4], 0, 1, "float32", 1);
  y = tf.randomNormal([5, 3], 0, 1, "float32", 2);
});

function twoLayers() {
  return tf.sequential({
    layers: [
      tf.layers.dense({ name: "a", inputShape: [4], units: 8 }),
      tf.layers.dense({ name: "b", units: 3 }),
    ],
  });
}

const compile = (model: tf.LayersModel, optimizer: tf.Optimizer) =>
  model.compile({ optimizer, loss: "meanSquaredError" });

/** The layer's weights by name (a layer's `weights` order changes when one is frozen). */
const values = (model: tf.LayersModel, layer: string) =>
  Object.fromEntries(
    listModelWeights(model)
      .filter((w) => w.layerPath === layer)
      .map((w) => [w.tail, [...w.variable.read().dataSync()]]),
  );

describe("freezing with an optimizer that already has state", () => {
  it("breaks in plain tfjs (the scenario loadout must prevent)", async () => {
    const model = twoLayers();
    const optimizer = tf.train.adam(0.01);
    compile(model, optimizer);
    await model.trainOnBatch(x, y);
    model.getLayer("a").trainable = false;
    compile(model, optimizer);
    await expect(model.trainOnBatch(x, y)).rejects.toThrow(/could not be broadcast/);
    model.dispose();
  });

  for (const recompile of [true, false]) {
    it(`keeps model and optimizer consistent through loadout (${recompile ? "with" : "without"} a recompile)`, async () => {
      const model = twoLayers();
      const optimizer = tf.train.adam(0.01);
      compile(model, optimizer);
      await model.trainOnBatch(x, y);
      const target = tfjsModelTarget(model);
      const before = tfjsOptimizerTarget(optimizer, model).getState().state;
      await target.setTrainable(["a/kernel", "a/bias"], false);
      if (recompile) compile(model, optimizer);
      const frozen = values(model, "a");
      const head = values(model, "b");
      // The head's moments are still the head's (position 0 now), the frozen layer's set aside.
      const after = tfjsOptimizerTarget(optimizer, model).getState().state;
      expect(after.get("b/kernel")).toEqual(before.get("b/kernel"));
      expect(after.get("a/kernel")).toEqual(before.get("a/kernel"));
      await model.trainOnBatch(x, y);
      await model.trainOnBatch(x, y);
      expect(values(model, "a")).toEqual(frozen);
      expect(values(model, "b")).not.toEqual(head);
      // Unfreezing brings the set-aside moments back to their weights.
      const aside = tfjsOptimizerTarget(optimizer, model).getState().state.get("a/kernel");
      await target.setTrainable(["a/kernel", "a/bias"], true);
      if (recompile) compile(model, optimizer);
      expect(
        tfjsOptimizerTarget(optimizer, model).getState().state.get("a/kernel")?.tensors,
      ).toEqual(aside?.tensors);
      await model.trainOnBatch(x, y);
      expect(values(model, "a")).not.toEqual(frozen);
      model.dispose();
    });
  }

  it("undoes a freeze exactly, optimizer slots included", async () => {
    const model = twoLayers();
    const optimizer = tf.train.rmsprop(0.01, 0.9, 0.5, 1e-7, true);
    compile(model, optimizer);
    await model.trainOnBatch(x, y);
    const before = snapshot(model, optimizer);
    const tensors = tf.memory().numTensors;
    const undo = await tfjsModelTarget(model).setTrainable(["a/bias", "b/kernel"], false);
    expect(snapshot(model, optimizer)).not.toEqual(before);
    await undo();
    expect(snapshot(model, optimizer)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    await model.trainOnBatch(x, y);
    model.dispose();
  });

  it("keeps an optimizer used in a custom loop in step once it has a target", async () => {
    const model = twoLayers();
    const optimizer = tf.train.momentum(0.01, 0.9);
    const step = () =>
      optimizer.minimize(
        () => tf.losses.meanSquaredError(y, model.apply(x) as tf.Tensor) as tf.Scalar,
        false,
        model.trainableWeights.map((w) => w.read() as tf.Variable),
      );
    step();
    tfjsOptimizerTarget(optimizer, model);
    await tfjsModelTarget(model).setTrainable(["a/kernel"], false);
    const frozen = values(model, "a");
    step();
    expect(values(model, "a").kernel).toEqual(frozen.kernel);
    expect(values(model, "a").bias).not.toEqual(frozen.bias);
    model.dispose();
  });

  it("refuses, before changing anything, when the slots no longer fit the weights", async () => {
    const model = twoLayers();
    const optimizer = tf.train.adam(0.01);
    compile(model, optimizer);
    await model.trainOnBatch(x, y);
    // Frozen behind loadout's back, and the optimizer's state is now out of step.
    model.getLayer("a").trainable = false;
    compile(model, optimizer);
    const before = snapshot(model);
    await expect(tfjsModelTarget(model).setTrainable(["b/bias"], false)).rejects.toMatchObject({
      code: "OPTIMIZER_OUT_OF_STEP",
    });
    expect(snapshot(model)).toEqual(before);
    model.dispose();
  });
});
