import {
  collectedTrainableWeights,
  type Layer,
  type LayersModel,
  type LayerVariable,
  layerWeightLists,
  setCollectedTrainableWeights,
} from "./internals.js";

/**
 * Freezing in tfjs: `layer.trainable` freezes all of a layer's weights (and unfreezing it
 * unfreezes all of them); a single weight's `trainable` freezes just that one. compile() also
 * captures the trainable weights fit() will train, so they are re-captured here: a model
 * compiled before a freeze then trains exactly what is trainable, with or without a recompile.
 */

export interface TrainableFlags {
  layers: Map<Layer, boolean>;
  weights: Map<LayerVariable, boolean>;
  collected: LayerVariable[] | undefined;
}

/** Every flag setTrainableWeights may change, to put back exactly. */
export function captureFlags(model: LayersModel, layers: Iterable<Layer>): TrainableFlags {
  const flags: TrainableFlags = {
    layers: new Map(),
    weights: new Map(),
    collected: collectedTrainableWeights(model),
  };
  for (const layer of layers) {
    flags.layers.set(layer, layer.trainable);
    for (const weight of layerWeightLists(layer).trainable) {
      flags.weights.set(weight, weight.trainable);
    }
  }
  return flags;
}

export function restoreFlags(model: LayersModel, flags: TrainableFlags): void {
  for (const [layer, trainable] of flags.layers) layer.trainable = trainable;
  for (const [weight, trainable] of flags.weights) weight.trainable = trainable;
  if (flags.collected) setCollectedTrainableWeights(model, flags.collected);
}

/**
 * Sets the given weights' flags. A layer whose weights all end up frozen gets
 * `layer.trainable = false`, any other `layer.trainable = true`; each weight's own flag is set.
 */
export function setTrainableWeights(
  model: LayersModel,
  changes: ReadonlyMap<LayerVariable, { layer: Layer; trainable: boolean }>,
): void {
  const layers = new Set([...changes.values()].map((change) => change.layer));
  for (const layer of layers) {
    const weights = layerWeightLists(layer).trainable;
    const wanted = weights.map(
      (w) => changes.get(w)?.trainable ?? (layer.trainable && w.trainable),
    );
    layer.trainable = wanted.some((flag) => flag);
    // Set each weight too: an RNN's `trainable` does not reach its cell's weights.
    weights.forEach((w, i) => {
      w.trainable = wanted[i]!;
    });
  }
  if (collectedTrainableWeights(model)) {
    setCollectedTrainableWeights(model, [...model.trainableWeights]);
  }
}
