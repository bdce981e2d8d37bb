import * as tf from "@tensorflow/tfjs";
import { LoadError } from "../errors.js";
import { type Layer, type LayersModel, type LayerVariable, layerWeightLists } from "./internals.js";

/**
 * A tfjs model's weights under stable names: `<layer name>/<weight name>`, e.g. `fc/kernel`,
 * `bn/moving_mean`, `lstm/recurrent_kernel`. The weight name comes from the weight's
 * `originalName` (`fc/kernel` → `kernel`), never from `.name`: tfjs makes `.name` unique across
 * every model in the process, so a second model with the same layer names gets `fc/kernel_1`.
 * Layers of a nested model are named by their path: `encoder/fc/kernel`.
 */

export interface ModelWeight {
  /** `<layer path>/<weight name>`. */
  name: string;
  /** The layer that owns the weight (a leaf layer, never a nested model). */
  layer: Layer;
  /** The layer's name, prefixed by the names of the models it is nested in (`encoder/fc`). */
  layerPath: string;
  /** The weight's own name inside its layer: `kernel`, `moving_mean`... */
  tail: string;
  variable: LayerVariable;
  /** Weights a layer creates non-trainable (BatchNorm's moving statistics) are buffers. */
  kind: "parameter" | "buffer";
  dtype: TfjsDType;
  shape: readonly number[];
}

/** The weight's name inside its layer, from `originalName` (which may carry outer name scopes). */
export function weightTail(layer: Layer, weight: LayerVariable): string {
  const original = weight.originalName;
  const marker = `${layer.name}/`;
  const at = original.lastIndexOf(marker);
  if (at !== -1 && at + marker.length < original.length) return original.slice(at + marker.length);
  const slash = original.lastIndexOf("/");
  return slash === -1 ? original : original.slice(slash + 1);
}

/** The dtypes of tfjs weights loadout loads (both are loadout dtypes of the same name). */
export type TfjsDType = "float32" | "int32";

function dtypeOf(weight: LayerVariable, name: string): TfjsDType {
  if (weight.dtype === "float32") return "float32";
  if (weight.dtype === "int32") return "int32";
  throw new LoadError("UNSUPPORTED_DTYPE", `weight '${name}' is ${weight.dtype}`, {
    key: name,
    hint: "loadout loads float32 and int32 tfjs weights.",
  });
}

function shapeOf(weight: LayerVariable, name: string): readonly number[] {
  const shape = weight.shape.map((dim) => {
    if (typeof dim !== "number" || !Number.isSafeInteger(dim) || dim < 0) {
      throw new LoadError("BAD_WEIGHT_SHAPE", `weight '${name}' has shape [${weight.shape}]`, {
        key: name,
      });
    }
    return dim;
  });
  return Object.freeze(shape);
}

/** The leaf layers of a model, depth first, each with its path of model names. */
export function leafLayers(model: LayersModel): { layer: Layer; path: string }[] {
  const leaves: { layer: Layer; path: string }[] = [];
  const stack: { layer: Layer; prefix: string }[] = [];
  const pushChildren = (container: LayersModel, prefix: string) => {
    for (let i = container.layers.length - 1; i >= 0; i--) {
      stack.push({ layer: container.layers[i]!, prefix });
    }
  };
  pushChildren(model, "");
  const seen = new Set<Layer>();
  while (stack.length > 0) {
    const { layer, prefix } = stack.pop()!;
    if (seen.has(layer)) continue;
    seen.add(layer);
    if (layer instanceof tf.LayersModel) pushChildren(layer, `${prefix}${layer.name}/`);
    else leaves.push({ layer, path: `${prefix}${layer.name}` });
  }
  return leaves;
}

/**
 * Every weight of the model in a fixed order (layer by layer; in a layer, the weights it created
 * trainable, then the others), whatever is frozen. Two weights with one name are refused.
 */
export function listModelWeights(model: LayersModel): ModelWeight[] {
  const weights: ModelWeight[] = [];
  const byName = new Map<string, ModelWeight>();
  const seen = new Set<LayerVariable>();
  for (const { layer, path } of leafLayers(model)) {
    const { trainable, nonTrainable } = layerWeightLists(layer);
    const entries = [
      ...trainable.map((variable) => ({ variable, kind: "parameter" as const })),
      ...nonTrainable.map((variable) => ({ variable, kind: "buffer" as const })),
    ];
    for (const { variable, kind } of entries) {
      // A weight shared by two layers is listed once, under the first.
      if (seen.has(variable)) continue;
      seen.add(variable);
      const tail = weightTail(layer, variable);
      const name = `${path}/${tail}`;
      const other = byName.get(name);
      if (other) {
        throw new LoadError("DUPLICATE_PARAMETER", `two weights of the model are named '${name}'`, {
          key: name,
          hint: "Give the layers distinct names (tfjs layer option `name`).",
        });
      }
      const weight: ModelWeight = {
        name,
        layer,
        layerPath: path,
        tail,
        variable,
        kind,
        dtype: dtypeOf(variable, name),
        shape: shapeOf(variable, name),
      };
      byName.set(name, weight);
      weights.push(weight);
    }
  }
  return weights;
}
