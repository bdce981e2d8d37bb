import { fileURLToPath } from "node:url";
import { runChild } from "../lib/child.mjs";
import { formatBytes, formatPercent, formatTime } from "../lib/format.mjs";
import { interleave } from "../lib/rounds.mjs";
import { median, pairedRatio } from "../lib/stats.mjs";
import { ensureTfjsData, TFJS_CHECKPOINT } from "../lib/tfjs-data.mjs";
import { MODEL_JSON, WEIGHTS_BIN } from "../lib/tfjs-format.mjs";
import { denseSizes } from "../lib/tfjs-model.mjs";

/**
 * Loading the 1 GiB checkpoint into a tf.LayersModel (256 bias-free Dense layers 1024 → 1024,
 * see lib/tfjs-model.mjs) with runTfjsLoad, beside tfjs's own tf.loadLayersModel of the same
 * weights saved in tfjs's format (the anchor), on each tfjs backend that initialises here.
 * Every run is a child process of its own (lib/tfjs-worker.mjs): a fresh tfjs, and its own
 * peak memory (the wasm heap never shrinks). Target: loadout at least as fast as the anchor.
 *
 * Run time: each run is a child process that starts tfjs and builds a 1 GiB model, so the
 * section runs 3 rounds (plus the warm-up round) unless `--rounds` is given, and measures one
 * mode only from safetensors, which transposes like the zip (reading is not what differs).
 */

export const name = "tfjs";
export const title = "TensorFlow.js: loading into a tf.LayersModel";

const BACKENDS = ["cpu", "wasm"];
/** Rounds when the command line does not say (`--rounds N` applies as it is). */
const DEFAULT_ROUNDS = 3;

/** The section's rounds: `--rounds` when given (run.js keeps its argv when it re-runs itself). */
function roundsFor(context) {
  const given = process.argv.some((arg) => arg === "--rounds" || arg.startsWith("--rounds="));
  return given || context.mode === "quick" ? context.options.rounds : DEFAULT_ROUNDS;
}
const WORKER = fileURLToPath(new URL("../lib/tfjs-worker.mjs", import.meta.url));

/** Runs one worker job; resolves its JSON result, with the wall time of the whole child. */
async function worker(command, job) {
  const { ms: wallMs, stdout } = await runChild(process.execPath, [
    WORKER,
    command,
    JSON.stringify(job),
  ]);
  return { ...JSON.parse(stdout.trim().split("\n").pop()), wallMs };
}

/** The backend's description, or why it is not measured. */
async function probeBackend(backend) {
  try {
    const info = await worker("probe", { backend });
    if (info.backend !== backend) return { error: `tfjs fell back to ${info.backend}` };
    const variant =
      backend === "wasm"
        ? ` (${info.simd ? "SIMD" : "no SIMD"}, ${info.threads ? "multi-threaded" : "one thread"})`
        : " (pure JavaScript)";
    return { label: `${backend}${variant}`, tfjs: info.tfjs };
  } catch (error) {
    return { error: String(error.message ?? error).split("\n")[0] };
  }
}

/** The loadout contenders: each source file in the modes it lists. */
function loadoutContenders(sources) {
  return sources.flatMap((source) =>
    source.modes.map((mode) => ({ ...source, mode, id: `${source.id}-${mode}` })),
  );
}

/** One backend's measurement: every contender in interleaved rounds, then its table and targets. */
async function measureBackend(context, backend, title, { spec, sources, tfjs, bytes, rounds }) {
  const ours = loadoutContenders(sources);
  const contenders = [
    {
      id: "anchor",
      run: () => worker("load", { backend, spec, kind: "anchor", folder: tfjs.folder }),
    },
    ...ours.map((c) => ({
      id: c.id,
      run: () =>
        worker("load", {
          backend,
          spec,
          kind: "loadout",
          path: c.path,
          mode: c.mode,
          pytorch: c.pytorch,
        }),
    })),
  ];
  const samples = await interleave(rounds, contenders, context.log);
  for (const [id, runs] of samples) {
    for (const s of runs) {
      if (s.backend !== backend) throw new Error(`${id} ran on ${s.backend}, not ${backend}`);
    }
  }
  const times = (id) => samples.get(id).map((s) => s.ms);
  const anchorTimes = times("anchor");
  const anchor = context.summarize(samples.get("anchor"));
  const rows = [
    {
      contender: "tf.loadLayersModel, tfjs format (anchor)",
      ms: anchor.ms,
      bytes,
      extra: anchor.extra,
      spread: anchor.spread,
      times: anchor.times,
      note: `builds the model too; extra includes its ${formatBytes(bytes)} of weights: ${formatBytes(anchor.extra - bytes)} beyond them`,
    },
  ];
  const targets = [];
  for (const c of ours) {
    const runs = samples.get(c.id);
    const s = context.summarize(runs);
    const ratio = pairedRatio(anchorTimes, times(c.id));
    // Like for like with the anchor, which builds its model: the same build (zeros) + the load.
    const withBuild = pairedRatio(
      anchorTimes,
      runs.map((r) => r.ms + r.buildMs),
    );
    const buildMs = median(runs.map((r) => r.buildMs));
    const loaded = runs[0].bytesLoaded;
    if (runs.some((r) => r.bytesLoaded !== bytes)) {
      throw new Error(`${c.id}: loaded ${runs.map((r) => r.bytesLoaded)} bytes, not ${bytes}`);
    }
    const notes = [];
    if (c.mode === "transactional")
      notes.push(`extra = ${(s.extra / loaded).toFixed(2)}× the ${formatBytes(loaded)} loaded`);
    notes.push(
      `+ building the model (${formatTime(buildMs)}): ${formatPercent(withBuild)} of the anchor's speed`,
    );
    rows.push({
      contender: `runTfjsLoad ${c.mode}, ${c.label}`,
      ms: s.ms,
      bytes,
      ratio,
      extra: s.extra,
      spread: s.spread,
      times: s.times,
      note: notes.join("; "),
    });
    targets.push({
      what: `${backend}: runTfjsLoad ${c.mode} from ${c.file} at least as fast as tf.loadLayersModel`,
      // One decimal: 99.6 % must not read as 100 % beside a MISS.
      measured: `${(ratio * 100).toFixed(1)} % of its speed`,
      pass: ratio >= 1,
    });
  }
  return { table: { title, rows }, targets };
}

export async function run(context) {
  const f32 = await context.data("f32");
  const safetensors = await context.data("safetensors");
  const spec = context.sizes.big;
  const { inputs, units } = denseSizes(spec);
  const tfjs = await ensureTfjsData({ dataFolder: context.dataFolder, spec, log: context.log });
  const sources = [
    {
      id: "pt",
      label: "PyTorch zip (transposes)",
      file: "model-f32.pt",
      path: f32.path,
      pytorch: true,
      modes: ["in_place", "transactional"],
    },
    {
      id: "st",
      label: "safetensors (transposes)",
      file: "model-f32.safetensors",
      path: safetensors.path,
      pytorch: true,
      modes: ["in_place"],
    },
    {
      id: "tfjs",
      label: "loadout tfjs checkpoint",
      file: TFJS_CHECKPOINT,
      path: tfjs.checkpoint.path,
      pytorch: false,
      modes: ["in_place", "transactional"],
    },
  ];

  const rounds = roundsFor(context);
  const tables = [];
  const targets = [];
  const skipped = [];
  const notes = [
    `Model: ${spec.count} Dense layers ${inputs} → ${units} without bias (${formatBytes(f32.dataBytes)} of float32 kernels), named layers_<i>; PyTorch's layers.<i>.weight [out, in] maps onto layers_<i>/kernel [in, out] by a transpose.`,
    `Anchor: tf.loadLayersModel through an IOHandler reading ${MODEL_JSON} + one ${WEIGHTS_BIN} (${formatBytes(tfjs.weightsBin.size)}) with fs; it builds the model (zero-initialised) and assigns the weights. loadout's contenders load into a model built beforehand (untimed, its weights resident); their times include opening the file.`,
    `${TFJS_CHECKPOINT}: writeTfjsTrainingCheckpoint of the same model (tfjs names and layouts, no transpose).`,
    "% of ceiling is the anchor's time over the contender's, round by round (≥ 100 %: at least as fast). Each run is a fresh child process; extra memory is its peak RSS (VmHWM) over its RSS just before the load.",
    `${rounds} interleaved rounds after a warm-up round (this section's default is ${DEFAULT_ROUNDS}; --rounds sets it), medians; safetensors in in_place mode only (it transposes like the zip).`,
  ];
  for (const backend of BACKENDS) {
    const probe = await probeBackend(backend);
    if (probe.error) {
      skipped.push(`${backend} backend not measured: ${probe.error}`);
      continue;
    }
    context.log(`  backend ${probe.label}`);
    const title = `tfjs ${probe.tfjs}, backend ${probe.label}: ${spec.count} float32 kernels [${inputs}, ${units}] (${formatBytes(f32.dataBytes)})`;
    const measured = await measureBackend(context, backend, title, {
      spec,
      sources,
      tfjs,
      bytes: f32.dataBytes,
      rounds,
    });
    tables.push(measured.table);
    targets.push(...measured.targets);
  }
  if (tables.length === 0) throw new Error(`no tfjs backend initialised: ${skipped.join("; ")}`);
  return { tables, targets, notes: [...notes, ...skipped] };
}
