import { valueAt } from "./values.mjs";

/**
 * The tf.LayersModel the TensorFlow.js section loads into: a stack of bias-free Dense layers,
 * one per tensor of the big checkpoint. Layer `layers_<i>` is PyTorch's `layers.<i>` (a Linear
 * without bias, weight [out, in]), which loadout's PyTorch mapping finds by its second rule
 * (dots as underscores), so the model's weights map 1:1 onto `model-f32.pt`. A Dense kernel is
 * [in, out]: the transpose of the Linear weight, so kernel element (a, b) of layer t holds the
 * checkpoint's element b·in + a of tensor t.
 */

export function layerName(i) {
  return `layers_${i}`;
}

export function kernelName(i) {
  return `${layerName(i)}/kernel`;
}

/** { inputs, units } of each Dense layer for a big-tensor spec { count, shape: [out, in] }. */
export function denseSizes(spec) {
  const [units, inputs] = spec.shape;
  if (spec.shape.length !== 2 || units !== inputs) {
    // Chained Dense layers need each layer's input to be the previous layer's output.
    throw new Error(`the tfjs section needs square tensors, got [${spec.shape}]`);
  }
  return { inputs, units };
}

/** The stack of `spec.count` Dense layers, every kernel made by `initializer`. */
export function buildDenseStack(tf, spec, initializer) {
  const { inputs, units } = denseSizes(spec);
  const model = tf.sequential({ name: "dense_stack" });
  for (let i = 0; i < spec.count; i++) {
    model.add(
      tf.layers.dense({
        name: layerName(i),
        units,
        useBias: false,
        kernelInitializer: initializer,
        ...(i === 0 ? { inputShape: [inputs] } : {}),
      }),
    );
  }
  return model;
}

/** The value kernel element `k` of layer `t` must hold after loading. */
export function kernelValueAt(t, k, spec) {
  const { inputs, units } = denseSizes(spec);
  const a = Math.floor(k / units);
  const b = k % units;
  return valueAt(t, b * inputs + a);
}

/** Layer t's kernel, filled with the values loading must produce ([in, out], row-major). */
export function kernelValues(t, spec) {
  const { inputs, units } = denseSizes(spec);
  const kernel = new Float32Array(inputs * units);
  for (let a = 0; a < inputs; a++) {
    for (let b = 0; b < units; b++) kernel[a * units + b] = valueAt(t, b * inputs + a);
  }
  return kernel;
}

/**
 * Kernel elements checked per layer: first, second, (1, 0) (which a missing transpose gets
 * wrong), one near the middle, last. Elements 0 and 1 can never both be 0 (see values.mjs), so a
 * layer left at zeros fails too.
 */
function probes(spec) {
  const { inputs, units } = denseSizes(spec);
  const numel = inputs * units;
  return [...new Set([0, 1, units, (numel >> 1) + 3, numel - 1])].filter((k) => k < numel);
}

/**
 * Throws unless every layer of `model` has one weight, its kernel, with the expected probes.
 * Reads the probes alone (a 1-element slice each): on wasm, dataSync of every kernel would copy
 * the whole 1 GiB out of the heap, a second per run.
 */
export function verifyDenseStack(tf, model, spec, label) {
  const checked = probes(spec);
  const { units } = denseSizes(spec);
  for (let t = 0; t < spec.count; t++) {
    const layer = model.getLayer(layerName(t));
    if (layer.weights.length !== 1) {
      throw new Error(`${label}: layer ${layerName(t)} has ${layer.weights.length} weights`);
    }
    const kernel = layer.weights[0].read();
    for (const k of checked) {
      const at = [Math.floor(k / units), k % units];
      const value = tf.tidy(() => tf.slice(kernel, at, [1, 1]).dataSync()[0]);
      const expected = kernelValueAt(t, k, spec);
      if (value !== expected) {
        throw new Error(
          `${label}: ${kernelName(t)} element ${k} is ${value}, expected ${expected}`,
        );
      }
    }
  }
}
