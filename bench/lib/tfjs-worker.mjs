/**
 * The TensorFlow.js section's child process: one job per process, so that each load starts
 * from a fresh tfjs (the wasm backend's heap never shrinks: in a shared process, one run's
 * growth would hide the next one's) and its extra memory is its own.
 *
 *   node bench/lib/tfjs-worker.mjs probe '{"backend":"wasm"}'
 *   node bench/lib/tfjs-worker.mjs generate '{"folder":"...","spec":{"count":256,"shape":[1024,1024]}}'
 *   node bench/lib/tfjs-worker.mjs load '{"backend":"cpu","spec":{...},"kind":"loadout",
 *                                         "path":"...","mode":"in_place","pytorch":true}'
 *   node bench/lib/tfjs-worker.mjs load '{"backend":"cpu","spec":{...},"kind":"anchor","folder":"..."}'
 *
 * Prints one JSON line last (tfjs prints its Node.js banner on stdout before it).
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import * as loadout from "../../dist/node.js";
import * as loadoutTfjs from "../../dist/tfjs/index.js";
import { collectGarbage, watchMemory } from "./memory.mjs";
import { warmPageCache } from "./page-cache.mjs";
import { TFJS_CHECKPOINT } from "./tfjs-data.mjs";
import { MODEL_JSON, saveTfjsFormat, tfjsFileHandler, WEIGHTS_BIN } from "./tfjs-format.mjs";
import {
  buildDenseStack,
  denseSizes,
  kernelValues,
  layerName,
  verifyDenseStack,
} from "./tfjs-model.mjs";

/**
 * RSS is sampled every 100 ms only, and not at each tensor: tf.loadLayersModel blocks the event
 * loop while it works where runTfjsLoad awaits its reads, so 2 ms sampling fired (and cost 0.34 s
 * of a 2.9 s load, in a profile) in loadout's runs only. The kernel's peak (VmHWM) catches what
 * the samples miss, on Linux.
 */
const SAMPLE_MS = 100;

async function useBackend(name) {
  if (!(await tf.setBackend(name))) throw new Error(`tfjs backend ${name} did not initialise`);
  await tf.ready();
}

async function probe({ backend }) {
  await useBackend(backend);
  const info = { backend: tf.getBackend(), tfjs: tf.version.tfjs };
  if (backend === "wasm") {
    info.simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
    info.threads = await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT");
  }
  return info;
}

/** The model with the expected weights, saved in tfjs's format and as loadout's tfjs checkpoint. */
async function generate({ folder, spec }) {
  await useBackend("cpu");
  const { inputs, units } = denseSizes(spec);
  const model = buildDenseStack(tf, spec, "zeros");
  for (let t = 0; t < spec.count; t++) {
    // setWeights assigns: the variable keeps the values, tidy drops only our handle.
    tf.tidy(() =>
      model.getLayer(layerName(t)).setWeights([tf.tensor(kernelValues(t, spec), [inputs, units])]),
    );
  }
  verifyDenseStack(tf, model, spec, "generated model");
  await saveTfjsFormat(tf, model, folder);
  const sink = await loadout.openAtomicFile(join(folder, TFJS_CHECKPOINT));
  await loadoutTfjs.writeTfjsTrainingCheckpoint(sink, {
    model,
    state: loadout.freshTrainingState(),
  });
  return { folder };
}

/**
 * A model resident in memory and poisoned: built with zeros (as tf.loadLayersModel builds its
 * own before assigning the weights; timed as `buildMs`), then every kernel set to NaN, so that
 * its storage is resident before the baseline RSS is taken and a skipped kernel shows.
 */
function residentModel(spec) {
  const started = performance.now();
  const model = buildDenseStack(tf, spec, "zeros");
  const buildMs = performance.now() - started;
  for (const weight of model.weights) {
    tf.tidy(() => weight.write(tf.fill(weight.shape, Number.NaN)));
  }
  return { model, buildMs };
}

/** runTfjsLoad weights_only into a model built beforehand; times everything from the open. */
async function loadWithLoadout(job) {
  const { spec, path, mode, pytorch } = job;
  const { model, buildMs } = residentModel(spec);
  const config = loadout.resolveLoadingConfig({ type: "weights_only", mode });
  collectGarbage();
  await warmPageCache(path);
  const watch = watchMemory(SAMPLE_MS);
  const started = performance.now();
  const checkpoint = await loadout.openCheckpointFile(path);
  const { report } = await loadoutTfjs.runTfjsLoad({
    checkpoint,
    targets: { model: loadoutTfjs.tfjsModelTarget(model) },
    config,
    pytorch,
  });
  const ms = performance.now() - started;
  const memory = watch.stop();
  await checkpoint.close();
  verifyDenseStack(tf, model, spec, `runTfjsLoad ${mode} of ${path}`);
  return { ms, buildMs, ...memory, bytesLoaded: report.bytesLoaded };
}

/** tf.loadLayersModel from model.json + weights.bin: builds the model and assigns the weights. */
async function loadWithTfjs(job) {
  const { spec, folder } = job;
  collectGarbage();
  await warmPageCache(join(folder, MODEL_JSON), join(folder, WEIGHTS_BIN));
  const watch = watchMemory(SAMPLE_MS);
  const started = performance.now();
  const model = await tf.loadLayersModel(tfjsFileHandler(tf, folder));
  const ms = performance.now() - started;
  const memory = watch.stop();
  verifyDenseStack(tf, model, spec, `tf.loadLayersModel of ${folder}`);
  return { ms, ...memory };
}

async function load(job) {
  await useBackend(job.backend);
  const result = job.kind === "anchor" ? await loadWithTfjs(job) : await loadWithLoadout(job);
  return { backend: tf.getBackend(), ...result };
}

const COMMANDS = { probe, generate, load };

const [command, json] = process.argv.slice(2);
const run = COMMANDS[command];
if (!run || json === undefined) {
  process.stderr.write(`usage: tfjs-worker.mjs <${Object.keys(COMMANDS).join("|")}> '<json>'\n`);
  process.exit(2);
}
const result = await run(JSON.parse(json));
process.stdout.write(`\n${JSON.stringify(result)}\n`);
