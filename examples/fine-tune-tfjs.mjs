// Fine-tune a TensorFlow.js model from a PyTorch checkpoint with loadout's transfer_learning
// strategy: the PyTorch `Net` of test/fixtures/torch (10 classes) becomes the backbone of a tfjs
// model with a new 12-class head. The loaded layers are frozen; only the head trains.
//
//   npm run example                  (builds, then runs this file with plain node)
//   node examples/fine-tune-tfjs.mjs [checkpoint.pt]   (after `npm run build`)

import * as tf from "@tensorflow/tfjs";
import { openCheckpointFile, resolveLoadingConfig } from "loadout/node";
import {
  applyScheduledRate,
  createCosineAnnealingLR,
  planTfjsLoad,
  runTfjsLoad,
  schedulerTarget,
  tfjsModelTarget,
  tfjsOptimizerTarget,
} from "loadout/tfjs";

const checkpointPath = process.argv[2] ?? "test/fixtures/torch/net_state_dict.pt";
const CLASSES = 12;
const STEPS = 5;

/** PyTorch's Net in tfjs (channels last), with a 12-class head; epsilons as PyTorch's. */
function buildModel() {
  const seeded = (seed) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        name: "conv",
        inputShape: [8, 8, 3],
        filters: 8,
        kernelSize: 3,
        padding: "same",
        kernelInitializer: seeded(1),
      }),
      tf.layers.batchNormalization({ name: "bn", epsilon: 1e-5 }),
      tf.layers.activation({ name: "relu", activation: "relu" }),
      tf.layers.globalAveragePooling2d({ name: "pool" }),
      tf.layers.dense({ name: "fc", units: 16, kernelInitializer: seeded(2) }),
      tf.layers.layerNormalization({ name: "norm", epsilon: 1e-5 }),
      tf.layers.activation({ name: "relu2", activation: "relu" }),
      tf.layers.dense({ name: "head", units: CLASSES, kernelInitializer: seeded(3) }),
    ],
  });
}

const shape = (dims) => (dims ? `[${dims.join(", ")}]` : "-");

function printPlan(plan) {
  console.log(`plan: ${plan.strategy} from ${plan.source.file} (${plan.source.format})`);
  const rows = plan.entries.map((e) => [
    e.target,
    e.action + (e.frozen ? ", frozen" : ""),
    shape(e.targetShape),
    e.action === "load" ? (e.transform ?? e.reason) : e.reason,
  ]);
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  for (const row of rows) {
    console.log(
      `  ${row
        .slice(0, 3)
        .map((cell, c) => cell.padEnd(widths[c]))
        .join("  ")}  ${row[3]}`,
    );
  }
  for (const u of plan.unexpected) console.log(`  not loaded: ${u.source} (${u.reason})`);
  if (plan.optimizer)
    console.log(`  optimizer: ${plan.optimizer.action}: ${plan.optimizer.reason}`);
  if (plan.scheduler)
    console.log(`  scheduler: ${plan.scheduler.action}: ${plan.scheduler.reason}`);
  console.log(`  training state: ${plan.trainingState.action}: ${plan.trainingState.reason}`);
}

// The cpu backend: tfjs's wasm backend cannot train convolutions (no Conv2DBackpropFilter).
// PROD silences tfjs's "install tfjs-node" banner (tfjs-node needs a network download).
tf.env().set("PROD", true);
await tf.setBackend("cpu");
const model = buildModel();
const optimizer = tf.train.adam(0.05);
model.compile({ optimizer, loss: "categoricalCrossentropy" });
const scheduler = createCosineAnnealingLR([0.05], { tMax: STEPS });

const checkpoint = await openCheckpointFile(checkpointPath);
const request = {
  checkpoint,
  targets: {
    model: tfjsModelTarget(model),
    optimizer: tfjsOptimizerTarget(optimizer, model),
    scheduler: schedulerTarget(scheduler),
  },
  config: resolveLoadingConfig({ type: "transfer_learning", freeze_loaded: true }),
  pytorch: true,
};
printPlan(await planTfjsLoad(request));
const { report } = await runTfjsLoad(request);
await checkpoint.close();
console.log(
  `loaded ${report.tensorsLoaded} tensors (${report.bytesLoaded} bytes); trainable now: ${model.trainableWeights.map((w) => w.originalName).join(", ")}`,
);
for (const warning of report.warnings) console.log(`  warning: ${warning}`);

// A small synthetic task, seeded so every run prints the same numbers.
const x = tf.randomNormal([32, 8, 8, 3], 0, 1, "float32", 42);
const y = tf.oneHot(tf.randomUniform([32], 0, CLASSES, "int32", 43), CLASSES).toFloat();
const frozenBefore = model.getLayer("conv").getWeights()[0].dataSync().slice();
for (let step = 1; step <= STEPS; step++) {
  const loss = await model.trainOnBatch(x, y);
  scheduler.step();
  const lr = applyScheduledRate(scheduler, optimizer);
  console.log(`step ${step}: loss ${loss.toFixed(4)}, next lr ${lr.toExponential(3)}`);
}
const frozenAfter = model.getLayer("conv").getWeights()[0].dataSync();
console.log(
  `conv/kernel unchanged by training: ${frozenAfter.every((v, i) => v === frozenBefore[i])}`,
);
