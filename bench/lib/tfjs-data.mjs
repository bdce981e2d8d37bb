import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runChild } from "./child.mjs";
import { MODEL_JSON, WEIGHTS_BIN } from "./tfjs-format.mjs";

/**
 * The TensorFlow.js section's own files, in `<data folder>/tfjs/`, made on first use by a child
 * process (tfjs-worker.mjs generate) from one tfjs model holding the big checkpoint's weights:
 *
 *   model.json + weights.bin  the model saved in tfjs's own format (the anchor reads these)
 *   model-tfjs.ckpt           writeTfjsTrainingCheckpoint of the same model: tfjs names
 *                             (`layers_<i>/kernel`) and layouts ([in, out]), so no transpose
 *
 * A manifest records the spec and each file's size; anything missing or different is made again.
 */

const TFJS_DATA_VERSION = 1;
export const TFJS_CHECKPOINT = "model-tfjs.ckpt";
const FILES = [MODEL_JSON, WEIGHTS_BIN, TFJS_CHECKPOINT];
const WORKER = fileURLToPath(new URL("./tfjs-worker.mjs", import.meta.url));

async function sizeOf(path) {
  return stat(path).then(
    (s) => s.size,
    () => undefined,
  );
}

/** Whether every file the manifest lists is there with its recorded size, for this spec. */
async function upToDate(folder, manifest, specKey) {
  if (manifest?.spec !== specKey) return false;
  for (const file of FILES) {
    const size = await sizeOf(join(folder, file));
    if (size === undefined || size !== manifest.files?.[file]) return false;
  }
  return true;
}

/** Makes the files if needed; resolves { folder, checkpoint: {path, size}, weightsBin: {path, size} }. */
export async function ensureTfjsData({ dataFolder, spec, log }) {
  const folder = join(dataFolder, "tfjs");
  await mkdir(folder, { recursive: true });
  const manifestPath = join(folder, "manifest.json");
  const manifest = await readFile(manifestPath, "utf8")
    .then(JSON.parse)
    .catch(() => undefined);
  const specKey = JSON.stringify({ version: TFJS_DATA_VERSION, spec });
  if (!(await upToDate(folder, manifest, specKey))) {
    log(
      `generating ${folder}: tfjs format and ${TFJS_CHECKPOINT}, ${spec.count} × [${spec.shape}] ...`,
    );
    const started = performance.now();
    // The old manifest goes first, so that it cannot vouch for files half replaced.
    await rm(manifestPath, { force: true });
    await runChild(process.execPath, [WORKER, "generate", JSON.stringify({ folder, spec })]);
    const files = {};
    for (const file of FILES) files[file] = await sizeOf(join(folder, file));
    await writeFile(manifestPath, `${JSON.stringify({ spec: specKey, files }, null, 2)}\n`);
    log(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const file = async (name) => ({
    path: join(folder, name),
    size: await sizeOf(join(folder, name)),
  });
  return {
    folder,
    checkpoint: await file(TFJS_CHECKPOINT),
    modelJson: await file(MODEL_JSON),
    weightsBin: await file(WEIGHTS_BIN),
  };
}
