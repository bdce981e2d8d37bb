import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import type { Checkpoint } from "../../src/checkpoint/checkpoint.js";
import { openCheckpoint } from "../../src/checkpoint/open.js";
import { resolveLoadingConfig } from "../../src/config/resolve.js";
import type { LoadingConfig } from "../../src/config/types.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { openCheckpointFile } from "../../src/node.js";
import {
  collectedTrainableWeights,
  iterationsOf,
  numberField,
  slotArray,
  variableField,
} from "../../src/tfjs/internals.js";
import { slotFieldsOf, slotsByWeight } from "../../src/tfjs/optimizer-slots.js";
import { type TfjsTrainingRun, writeTfjsTrainingCheckpoint } from "../../src/tfjs/save.js";
import { listModelWeights } from "../../src/tfjs/weights.js";
import { createMemorySink } from "../../src/writers/sink.js";

/** Shared by the TensorFlow.js tests: backends, the fixture models, snapshots of everything. */

export const torchFixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/torch/${name}`, import.meta.url));
export const tfjsFixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
export const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;

/** wasm is ~30× faster than cpu here; cpu where bit-exactness across runs is asserted. */
export async function useBackend(name: "wasm" | "cpu"): Promise<void> {
  if (tf.getBackend() === name) return;
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tfjs backend ${name} did not initialise`);
  await tf.ready();
}

export function config(raw: Record<string, unknown>): LoadingConfig {
  return resolveLoadingConfig(raw);
}

export async function openFixture(path: string): Promise<Checkpoint> {
  return openCheckpointFile(path);
}

/**
 * The fixtures' `Net` in tfjs: conv (3→8, 3×3, same) → bn → relu → global average pool → fc
 * (8→16) → norm (LayerNorm) → relu → head (16→classes). Channels last; epsilons PyTorch's.
 */
export function buildNet(options: { classes?: number; inChannels?: number; seed?: number } = {}) {
  const seed = options.seed ?? 1;
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: seed + offset });
  const model = tf.sequential();
  model.add(
    tf.layers.conv2d({
      name: "conv",
      inputShape: [8, 8, options.inChannels ?? 3],
      filters: 8,
      kernelSize: 3,
      padding: "same",
      kernelInitializer: init(0),
      biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 1 }),
    }),
  );
  model.add(tf.layers.batchNormalization({ name: "bn", epsilon: 1e-5 }));
  model.add(tf.layers.activation({ name: "relu", activation: "relu" }));
  model.add(tf.layers.globalAveragePooling2d({ name: "pool" }));
  model.add(tf.layers.dense({ name: "fc", units: 16, kernelInitializer: init(2) }));
  model.add(tf.layers.layerNormalization({ name: "norm", epsilon: 1e-5 }));
  model.add(tf.layers.activation({ name: "relu2", activation: "relu" }));
  model.add(
    tf.layers.dense({
      name: "head",
      units: options.classes ?? 10,
      kernelInitializer: init(3),
      biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 4 }),
    }),
  );
  return model;
}

/** The generator's `SeqNet` in tfjs: embed → conv1d → norm → lstm (last step) → head. */
export function buildSeqNet() {
  const model = tf.sequential();
  model.add(tf.layers.embedding({ name: "embed", inputDim: 10, outputDim: 4, inputLength: 7 }));
  model.add(tf.layers.conv1d({ name: "conv", filters: 6, kernelSize: 3 }));
  model.add(tf.layers.layerNormalization({ name: "norm", epsilon: 1e-5 }));
  model.add(tf.layers.lstm({ name: "lstm", units: 5, recurrentActivation: "sigmoid" }));
  model.add(tf.layers.dense({ name: "head", units: 3 }));
  return model;
}

/** net_forward.json's input (NCHW) as the NHWC tensor tfjs takes. */
export function netInput(values: number[], shape: number[]): tf.Tensor {
  return tf.tidy(() => tf.tensor(values, shape, "float32").transpose([0, 2, 3, 1]));
}

export interface Snapshot {
  weights: Map<string, number[]>;
  trainable: Map<string, boolean>;
  layers: Map<string, boolean>;
  collected: string[] | null;
  optimizer: {
    iterations: number;
    fields: Map<string, (number[] | null)[]>;
    byWeight: Map<string, Map<string, number[]>>;
    numbers: Record<string, number>;
    accBeta: number[];
  } | null;
}

/** Everything a load may change in a model and optimizer, copied, for exact comparison. */
export function snapshot(model: tf.LayersModel, optimizer?: tf.Optimizer): Snapshot {
  const weights = listModelWeights(model);
  const names = new Map(weights.map((w) => [w.variable, w.name]));
  const result: Snapshot = {
    weights: new Map(weights.map((w) => [w.name, [...w.variable.read().dataSync()]])),
    trainable: new Map(weights.map((w) => [w.name, w.variable.trainable])),
    layers: new Map(model.layers.map((l) => [l.name, l.trainable])),
    collected: collectedTrainableWeights(model)?.map((w) => names.get(w) ?? "?") ?? null,
    optimizer: null,
  };
  if (optimizer) {
    const fields = new Map<string, (number[] | null)[]>();
    for (const { field } of slotFieldsOf(optimizer)) {
      fields.set(
        field,
        slotArray(optimizer, field).map((e) => (e ? [...e.variable.dataSync()] : null)),
      );
    }
    const byWeight = new Map<string, Map<string, number[]>>();
    for (const [variable, slots] of slotsByWeight(optimizer, model)) {
      byWeight.set(
        names.get(variable) ?? "?",
        new Map([...slots].map(([f, e]) => [f, [...e.variable.dataSync()]])),
      );
    }
    const numbers: Record<string, number> = {};
    for (const key of ["learningRate", "beta1", "beta2", "epsilon", "momentum", "decay"]) {
      numbers[key] = numberField(optimizer, key);
    }
    result.optimizer = {
      iterations: iterationsOf(optimizer),
      fields,
      byWeight,
      numbers,
      accBeta: ["accBeta1", "accBeta2"].map(
        (f) => variableField(optimizer, f)?.dataSync()[0] ?? -1,
      ),
    };
  }
  return result;
}

/** A tfjs run saved to memory and opened again as a checkpoint. */
export async function saveToMemory(run: TfjsTrainingRun): Promise<Checkpoint> {
  const sink = createMemorySink();
  await writeTfjsTrainingCheckpoint(sink, run);
  return openCheckpoint(new MemorySource(sink.bytes(), "tfjs-run.ckpt"));
}

/** Fixed, seeded training data for a model with input `[8, 8, 3]` and `classes` outputs. */
export function netData(classes: number, seed = 7) {
  return tf.tidy(() => {
    const x = tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", seed);
    const labels = tf.randomUniform([4], 0, classes, "int32", seed + 1);
    return { x: tf.keep(x), y: tf.keep(tf.oneHot(labels, classes).toFloat()) };
  });
}
