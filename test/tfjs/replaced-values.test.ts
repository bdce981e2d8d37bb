import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { CheckpointContext, PipelineStage } from "../../src/pipeline/context.js";
import { emptyReport } from "../../src/pipeline/context.js";
import { CheckpointPipeline } from "../../src/pipeline/pipeline.js";
import { freshTrainingState } from "../../src/state/training-state.js";
import { MemoryModel } from "../../src/targets/memory.js";
import type { TypedArray } from "../../src/tensors/dtype.js";
import { wasmMemoryHeadroom } from "../../src/tfjs/internals.js";
import { runTfjsLoad } from "../../src/tfjs/load.js";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { assignKeepingPrevious } from "../../src/tfjs/replaced-values.js";
import { buildNet, config, openFixture, snapshot, torchFixture, useBackend } from "./helpers.js";

/**
 * What a write replaces is kept without copying it (a second reference to the same backend
 * data), given back by the Undo, and dropped when the load ends: no tensor or data buffer
 * outlives a load, committed or failed. On the cpu backend in_place loads read straight into the
 * weights' own arrays.
 */

function dense() {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        name: "fc",
        inputShape: [3],
        units: 2,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }),
        biasInitializer: tf.initializers.ones(),
      }),
    ],
  });
}

const counts = () => {
  const { numTensors, numDataBuffers } = tf.memory();
  return { numTensors, numDataBuffers };
};

const NEW_KERNEL = () => Float32Array.of(1, 2, 3, 4, 5, 6);
const NEW_BIAS = () => Float32Array.of(-1, -2);

for (const backend of ["cpu", "wasm"] as const) {
  describe(`replaced values on the ${backend} backend`, () => {
    beforeAll(() => useBackend(backend));

    it("a same-shape reshape shares the data; tf.clone copies it on wasm", () => {
      const t = tf.tensor([1, 2, 3]);
      const buffers = tf.memory().numDataBuffers;
      const alias = tf.reshape(t, [3]);
      expect(alias.dataId).toBe(t.dataId);
      expect(tf.memory().numDataBuffers).toBe(buffers);
      const clone = tf.clone(t);
      expect(clone.dataId === t.dataId).toBe(backend === "cpu");
      tf.dispose([t, alias, clone]);
    });

    it("write keeps the previous values without a copy; release() frees them", async () => {
      const model = dense();
      const target = tfjsModelTarget(model);
      const before = snapshot(model);
      const start = counts();
      const kernel = NEW_KERNEL();
      const undo = await target.write(
        new Map([
          ["fc/kernel", kernel],
          ["fc/bias", NEW_BIAS()],
        ]),
      );
      // One new buffer per weight written (its new value); the old ones are held, not copied.
      expect(counts()).toEqual({
        numTensors: start.numTensors + 2,
        numDataBuffers: start.numDataBuffers + 2,
      });
      if (backend === "cpu") {
        // The cpu backend took the array as the weight's storage: no copy on the way in either.
        expect(model.getLayer("fc").weights[0]!.read().dataSync()).toBe(kernel);
      }
      expect([...(await target.read("fc/kernel"))]).toEqual([1, 2, 3, 4, 5, 6]);
      target.release?.();
      expect(counts()).toEqual(start);
      await expect(undo()).rejects.toMatchObject({ code: "UNDO_RELEASED" });
      // Released, the write is final: the new values stay.
      expect(snapshot(model).weights).toEqual(
        new Map([
          ["fc/kernel", [1, 2, 3, 4, 5, 6]],
          ["fc/bias", [-1, -2]],
        ]),
      );
      expect(before.weights.get("fc/bias")).toEqual([1, 1]);
      model.dispose();
    });

    it("the Undo restores exactly and frees what the write added; a second call does nothing", async () => {
      const model = dense();
      const target = tfjsModelTarget(model);
      const before = snapshot(model);
      const start = counts();
      const undo = await target.write(new Map([["fc/kernel", NEW_KERNEL()]]));
      await undo();
      expect(snapshot(model)).toEqual(before);
      expect(counts()).toEqual(start);
      await undo();
      target.release?.();
      expect(snapshot(model)).toEqual(before);
      expect(counts()).toEqual(start);
      model.dispose();
    });

    it("previous values copied out (wasm memory short) are restored exactly too", () => {
      const model = dense();
      const before = snapshot(model);
      const start = counts();
      const variables = model.getLayer("fc").weights.map((w) => w.read() as tf.Variable);
      const assignments = [
        { variable: variables[0]!, values: NEW_KERNEL(), shape: [3, 2], dtype: "float32" as const },
        { variable: variables[1]!, values: NEW_BIAS(), shape: [2], dtype: "float32" as const },
      ];
      const replaced = assignKeepingPrevious(assignments, false);
      // Nothing kept in the backend: the old buffers were freed when the new values came in.
      expect(counts()).toEqual(start);
      replaced.restore();
      expect(replaced.restored).toBe(true);
      expect(snapshot(model)).toEqual(before);
      expect(counts()).toEqual(start);
      model.dispose();
    });

    it("a failed assignment puts back the ones before it and keeps nothing", () => {
      const model = dense();
      const before = snapshot(model);
      const start = counts();
      const [kernel, bias] = model.getLayer("fc").weights.map((w) => w.read() as tf.Variable);
      expect(() =>
        assignKeepingPrevious([
          { variable: kernel!, values: NEW_KERNEL(), shape: [3, 2], dtype: "float32" },
          // The wrong shape for the bias: tfjs refuses to make this tensor.
          { variable: bias!, values: NEW_BIAS(), shape: [3], dtype: "float32" },
        ]),
      ).toThrow();
      expect(snapshot(model)).toEqual(before);
      expect(counts()).toEqual(start);
      model.dispose();
    });

    for (const mode of ["transactional", "in_place"] as const) {
      it(`${mode}: a load from PyTorch leaves no tensor or buffer behind, committed or failed`, async () => {
        const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
        const model = buildNet({ seed: 9 });
        const start = counts();
        const { report } = await runTfjsLoad({
          checkpoint,
          targets: { model: tfjsModelTarget(model) },
          config: config({ type: "weights_only", mode }),
          pytorch: true,
        });
        // conv 2, bn 4, fc 2, norm 2, head 2.
        expect(report.tensorsLoaded).toBe(12);
        expect(counts()).toEqual(start);

        // Freezing fails after the weights were written (transactional) or before (in_place).
        const loaded = snapshot(model);
        const again = buildNet({ seed: 10 });
        const before = snapshot(again);
        const startAgain = counts();
        await expect(
          runTfjsLoad({
            checkpoint,
            targets: {
              model: tfjsModelTarget(again, {
                faults: { failOn: (op, key) => op === "setTrainable" && key === undefined },
              }),
            },
            config: config({ type: "weights_only", mode, freeze: ["fc/*"] }),
            pytorch: true,
          }),
        ).rejects.toMatchObject({ code: "INJECTED_FAULT" });
        expect(snapshot(again)).toEqual(before);
        expect(counts()).toEqual(startAgain);
        expect(loaded.weights).not.toEqual(before.weights);
        model.dispose();
        again.dispose();
        await checkpoint.close();
      });
    }
  });
}

describe("liveArray", () => {
  it("on cpu, is the array the backend keeps the weight in, while no other tensor shares it", async () => {
    await useBackend("cpu");
    const model = dense();
    const target = tfjsModelTarget(model);
    const kernel = model.getLayer("fc").weights[0]!.read();
    const live = target.liveArray?.("fc/kernel");
    expect(live).toBe(kernel.dataSync());
    (live as Float32Array).set(NEW_KERNEL());
    expect([...(await target.read("fc/kernel"))]).toEqual([1, 2, 3, 4, 5, 6]);
    // A tensor sharing the data would see a write into it: no live array then.
    const alias = tf.reshape(kernel, [3, 2]);
    expect(target.liveArray?.("fc/kernel")).toBeUndefined();
    alias.dispose();
    expect(target.liveArray?.("fc/kernel")).toBe(kernel.dataSync());
    model.dispose();
  });

  it("on wasm, is undefined (the heap's views detach when it grows)", async () => {
    await useBackend("wasm");
    const model = dense();
    expect(tfjsModelTarget(model).liveArray?.("fc/kernel")).toBeUndefined();
    const headroom = wasmMemoryHeadroom();
    expect(headroom).toBeGreaterThan(0);
    expect(headroom).toBeLessThan(2 ** 32);
    model.dispose();
  });

  it("on cpu, an in_place load reads into the weights' own arrays, giving what transactional gives", async () => {
    await useBackend("cpu");
    const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
    const results = [];
    for (const mode of ["in_place", "transactional"] as const) {
      const model = buildNet({ seed: 12 });
      const arrays = model.weights.map((w) => w.read().dataSync());
      await runTfjsLoad({
        checkpoint,
        targets: { model: tfjsModelTarget(model) },
        config: config({ type: "weights_only", mode }),
        pytorch: true,
      });
      const same = model.weights.map((w, i) => w.read().dataSync() === arrays[i]);
      results.push({ same, values: snapshot(model).weights });
      model.dispose();
    }
    expect(results[0]!.same.every(Boolean)).toBe(true);
    // transactional assigns new arrays (the staged ones) instead.
    expect(results[1]!.same.some(Boolean)).toBe(false);
    expect(results[0]!.values).toEqual(results[1]!.values);
    expect(wasmMemoryHeadroom()).toBeUndefined();
    await checkpoint.close();
  });
});

describe("the Undo of a write nobody calls or releases", () => {
  it("frees the kept values once it is garbage-collected", async () => {
    await useBackend("cpu");
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const model = dense();
    const target = tfjsModelTarget(model);
    const start = counts();
    await (async () => {
      await target.write(new Map([["fc/kernel", NEW_KERNEL()]]));
    })();
    expect(counts().numTensors).toBe(start.numTensors + 1);
    for (let i = 0; i < 50 && counts().numTensors !== start.numTensors; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(counts()).toEqual(start);
    expect([...(await target.read("fc/kernel"))]).toEqual([1, 2, 3, 4, 5, 6]);
    model.dispose();
  });
});

describe("the pipeline releases the model target when a load ends", () => {
  /** A real in-memory model that counts release() calls and sees whether undos came first. */
  class CountingModel extends MemoryModel {
    events: string[] = [];
    override async write(values: ReadonlyMap<string, TypedArray>) {
      const undo = await super.write(values);
      return async () => {
        this.events.push("undo");
        await undo();
      };
    }
    release() {
      this.events.push("release");
    }
  }

  const run = async (fail: boolean) => {
    const model = new CountingModel([{ name: "w", shape: [2], dtype: "float32" }]);
    const write: PipelineStage = {
      name: "write",
      async process(context: CheckpointContext) {
        const undo = await context.targets.model.write(new Map([["w", Float32Array.of(1, 2)]]));
        return { ...context, commits: [...(context.commits ?? []), undo] };
      },
    };
    const after: PipelineStage = {
      name: "after",
      async process(context: CheckpointContext) {
        if (fail) throw new Error("later stage failed");
        return context;
      },
    };
    const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
    const outcome = await new CheckpointPipeline([write, after])
      .run({
        checkpoint,
        targets: { model },
        trainingState: freshTrainingState(),
        config: config({ type: "weights_only" }),
        metadata: {},
        report: emptyReport(),
      })
      .then(
        () => "ok",
        (error: { code?: string }) => error.code,
      );
    await checkpoint.close();
    return { outcome, events: model.events, value: [...(await model.read("w"))] };
  };

  it("once after the last stage when it commits", async () => {
    expect(await run(false)).toEqual({ outcome: "ok", events: ["release"], value: [1, 2] });
  });

  it("once after the rollback when a stage fails", async () => {
    expect(await run(true)).toEqual({
      outcome: "STAGE_FAILED",
      events: ["undo", "release"],
      value: [0, 0],
    });
  });
});
