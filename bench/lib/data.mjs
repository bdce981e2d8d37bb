import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fillValues } from "./values.mjs";

/**
 * The files the benchmark reads, generated with loadout's own writers on first use and reused
 * (bench/data/ is git-ignored). A manifest records what was generated; a file whose size or spec
 * no longer matches is generated again. Every writer goes through openAtomicFile, so an
 * interrupted run never leaves a half-written file behind to be reused.
 */

/** Bump when the layout or values change, so old data is regenerated. */
const DATA_VERSION = 1;

export const SIZES = {
  full: { big: { count: 256, shape: [1024, 1024] }, small: { count: 20_000, shape: [8, 8] } },
  quick: { big: { count: 32, shape: [256, 256] }, small: { count: 2_000, shape: [8, 8] } },
};

const SMALL_PARTS = ["q", "k", "v", "o", "ff1", "ff2", "norm1", "norm2"];

export function bigName(i) {
  return `layers.${i}.weight`;
}

export function smallName(i) {
  return `encoder.blocks.${Math.floor(i / SMALL_PARTS.length)}.${SMALL_PARTS[i % SMALL_PARTS.length]}.weight`;
}

/**
 * A float32 TensorLike whose values are made when the writer asks for them (never all at once);
 * conversion to another dtype (the bf16 file) is loadout's own, through arrayTensor.
 */
function generatedTensor(loadout, index, shape) {
  const numel = shape.reduce((a, b) => a * b, 1);
  return {
    dtype: "float32",
    shape,
    async read(options = {}) {
      const values = fillValues(index, new Float32Array(numel));
      if (options.dtype === undefined || options.dtype === "float32") return values;
      return loadout.arrayTensor("float32", shape, values).read(options);
    },
  };
}

function bigTensors(loadout, spec) {
  return new Map(
    Array.from({ length: spec.count }, (_, i) => [
      bigName(i),
      generatedTensor(loadout, i, spec.shape),
    ]),
  );
}

/** The datasets: each knows its file name and how to write it; `needs` are written first. */
function datasets(loadout, spec) {
  const { big, small } = spec;
  const bigBytes = big.count * big.shape.reduce((a, b) => a * b, 1) * 4;
  return {
    f32: {
      file: "model-f32.pt",
      describe: `PyTorch zip, ${big.count} float32 tensors [${big.shape}]`,
      dataBytes: bigBytes,
      tensors: big.count,
      async write(path) {
        const sink = await loadout.openAtomicFile(path);
        await loadout.writeTorchCheckpoint(sink, loadout.pyOrderedDict(bigTensors(loadout, big)));
      },
    },
    bf16: {
      file: "model-bf16.pt",
      describe: `PyTorch zip, ${big.count} bfloat16 tensors [${big.shape}]`,
      dataBytes: bigBytes / 2,
      tensors: big.count,
      async write(path) {
        const sink = await loadout.openAtomicFile(path);
        await loadout.writeTorchCheckpoint(sink, loadout.pyOrderedDict(bigTensors(loadout, big)), {
          dtype: "bfloat16",
        });
      },
    },
    small: {
      file: `lightning-${small.count}.ckpt`,
      describe: `Lightning-like checkpoint, ${small.count} float32 tensors [${small.shape}]`,
      dataBytes: small.count * small.shape.reduce((a, b) => a * b, 1) * 4,
      tensors: small.count,
      async write(path) {
        const model = new Map(
          Array.from({ length: small.count }, (_, i) => [
            smallName(i),
            generatedTensor(loadout, i, small.shape),
          ]),
        );
        const sink = await loadout.openAtomicFile(path);
        await loadout.writeTrainingCheckpoint(sink, {
          model,
          trainingState: { epoch: 3, globalStep: 1200, bestMetric: 0.25, metricsHistory: [] },
          hyperParameters: { hidden: 8, blocks: Math.ceil(small.count / SMALL_PARTS.length) },
        });
      },
    },
    safetensors: {
      file: "model-f32.safetensors",
      describe: `safetensors copy of model-f32.pt (written by the convert path)`,
      dataBytes: bigBytes,
      tensors: big.count,
      needs: ["f32"],
      async write(path, paths, convert) {
        await convert.toSafetensors(paths.f32, path);
      },
    },
  };
}

/**
 * Makes sure the named datasets exist under `folder` (generating what is missing) and returns
 * { name: { path, size, ...description } } for them.
 */
export async function ensureData({ loadout, convert, folder, mode, names, log }) {
  const spec = SIZES[mode];
  const all = datasets(loadout, spec);
  await mkdir(folder, { recursive: true });
  const manifestPath = join(folder, "manifest.json");
  const manifest = await readFile(manifestPath, "utf8")
    .then(JSON.parse)
    .catch(() => ({}));
  const specKey = JSON.stringify({ version: DATA_VERSION, spec });
  if (manifest.spec !== specKey) {
    manifest.spec = specKey;
    manifest.files = {};
  }
  const result = {};
  const paths = {};
  const visit = async (name) => {
    if (result[name]) return;
    const dataset = all[name];
    if (!dataset) throw new Error(`unknown dataset ${name}`);
    for (const need of dataset.needs ?? []) await visit(need);
    const path = join(folder, dataset.file);
    const size = await stat(path).then(
      (s) => s.size,
      () => undefined,
    );
    let recorded = manifest.files[dataset.file];
    if (size === undefined || recorded !== size) {
      log(`generating ${path}: ${dataset.describe} ...`);
      const started = performance.now();
      await dataset.write(path, paths, convert);
      recorded = (await stat(path)).size;
      manifest.files[dataset.file] = recorded;
      await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
      log(`  wrote ${recorded} bytes in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    paths[name] = path;
    result[name] = {
      name,
      path,
      size: recorded,
      describe: dataset.describe,
      dataBytes: dataset.dataBytes,
      tensors: dataset.tensors,
    };
  };
  for (const name of names) await visit(name);
  return result;
}
