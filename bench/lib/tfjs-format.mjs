import { readFile, rename, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";

/**
 * TensorFlow.js's own model format on disk, the anchor of the tfjs section: `model.json` (the
 * topology and the weights manifest) beside one `weights.bin`, the layout tfjs-node's `file://`
 * handler writes. @tensorflow/tfjs has no file handler in Node, so saving goes through
 * tf.io.withSaveHandler and loading through a custom IOHandler that reads the files with fs.
 */

export const MODEL_JSON = "model.json";
export const WEIGHTS_BIN = "weights.bin";

/** Writes to a temporary name, then renames: an interrupted run never leaves a partial file. */
async function writeWhole(path, data) {
  const partial = `${path}.partial`;
  await writeFile(partial, data);
  await rename(partial, path);
}

/** Saves `model` as `folder`/model.json + `folder`/weights.bin; resolves tfjs's save result. */
export function saveTfjsFormat(tf, model, folder) {
  return model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      // weightData may be one ArrayBuffer or several: weights.bin holds them end to end.
      const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs }],
      };
      await writeWhole(join(folder, WEIGHTS_BIN), new Uint8Array(weights));
      await writeWhole(join(folder, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/** The file's bytes as one ArrayBuffer: readFile's own when the Buffer spans all of it (no copy). */
function wholeArrayBuffer(buffer) {
  if (buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength) {
    return buffer.buffer;
  }
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
}

/**
 * An IOHandler for tf.loadLayersModel reading `folder`/model.json and the weight files its
 * manifest names (which must be plain file names in the same folder).
 */
export function tfjsFileHandler(tf, folder) {
  const weightsOf = async (manifest) => {
    const specs = [];
    const buffers = [];
    for (const group of manifest) {
      for (const path of group.paths) {
        if (basename(path) !== path) throw new Error(`${MODEL_JSON}: weight path ${path}`);
        buffers.push(wholeArrayBuffer(await readFile(join(folder, path))));
      }
      specs.push(...group.weights);
    }
    return [specs, buffers.length === 1 ? buffers[0] : buffers];
  };
  return {
    async load() {
      const modelJson = JSON.parse(await readFile(join(folder, MODEL_JSON), "utf8"));
      return tf.io.getModelArtifactsForJSON(modelJson, weightsOf);
    },
  };
}
