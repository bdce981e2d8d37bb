import { AmbiguousKeyError, LoadError } from "../errors.js";
import { applyKeyMap, type KeyMapRule } from "../keys/key-map.js";
import type { CheckpointContext, PipelineStage } from "../pipeline/context.js";
import type { SourceStateDict } from "../strategies/source-tensor.js";
import { formatShape } from "../tensors/shape.js";
import type { Tensor } from "../tensors/tensor.js";
import type { Layer, LayersModel } from "./internals.js";
import {
  type Layout,
  layoutSource,
  type MappedSourceTensor,
  sumSource,
  unusedSource,
} from "./source-values.js";
import { leafLayers, listModelWeights, type ModelWeight } from "./weights.js";

/**
 * PyTorch state dicts in TensorFlow.js's names and layouts.
 *
 * Module → layer: a key `<module path>.<parameter>` belongs to the tfjs layer named
 *  1. the module path with dots as slashes (`encoder.fc` → `encoder/fc`, a layer of a nested model),
 *  2. else the module path with dots as underscores (`encoder.fc` → `encoder_fc`),
 *  3. else the path's last segment (`model.fc` → `fc`),
 * the first that names a layer. The plan lists each value under its tfjs name; its transform says
 * which checkpoint key it came from ("permute OIHW → HWIO of conv.weight", "renamed from
 * bn.running_var", "sum lstm.bias_ih_l0 + lstm.bias_hh_l0"). `keyMap` rules rename PyTorch keys before this (`^backbone\.` →
 * `encoder.`), and two modules reaching one layer are refused.
 *
 * Parameters, by the layer's class (anything else keeps its name, `fc.scale` → `fc/scale`):
 *
 * | PyTorch                                   | tfjs layer         | tfjs weight          | layout                   |
 * |-------------------------------------------|--------------------|----------------------|--------------------------|
 * | Linear weight [out, in], bias             | Dense              | kernel [in, out], bias | transpose              |
 * | Conv1d weight [O, I, W], bias             | Conv1D             | kernel [W, I, O], bias | permute OIW → WIO      |
 * | Conv2d weight [O, I, H, W], bias          | Conv2D             | kernel [H, W, I, O], bias | permute OIHW → HWIO |
 * | BatchNorm weight, bias, running_mean, running_var | BatchNormalization | gamma, beta, moving_mean, moving_variance | — |
 * | BatchNorm num_batches_tracked             | —                  | (unused)             |                          |
 * | LayerNorm weight, bias                    | LayerNormalization | gamma, beta          |                          |
 * | Embedding weight                          | Embedding          | embeddings           |                          |
 * | LSTM weight_ih_l0 [4H, I], weight_hh_l0 [4H, H] | LSTM         | kernel [I, 4H], recurrent_kernel [H, 4H] | transpose |
 * | LSTM bias_ih_l0 + bias_hh_l0              | LSTM               | bias [4H]            | sum                      |
 *
 * PyTorch's LSTM gates are ordered i, f, g, o and tfjs's i, f, c, o: the same blocks, so the
 * transposes keep them in place. Dtypes tfjs lacks are converted when loading (the plan shows
 * each conversion); int64 → int32 only when every value fits.
 */

export interface PytorchToTfjsOptions {
  /** Renames applied to PyTorch keys before module paths are matched to layers. */
  keyMap?: readonly KeyMapRule[];
}

interface ParamRule {
  /** The tfjs weight it loads into. */
  tail?: string;
  layout?: Layout;
  /** Why it has no tfjs counterpart. */
  unused?: string;
}

const TRANSPOSE: Layout = { perm: [1, 0], label: "transpose [out, in] → [in, out]" };
const CONV1D: Layout = { perm: [2, 1, 0], label: "permute OIW → WIO" };
const CONV2D: Layout = { perm: [2, 3, 1, 0], label: "permute OIHW → HWIO" };
const LSTM_INPUT: Layout = {
  perm: [1, 0],
  label: "transpose [4·hidden, in] → [in, 4·hidden] (gates i, f, g, o = tfjs i, f, c, o)",
};
const LSTM_RECURRENT: Layout = {
  perm: [1, 0],
  label: "transpose [4·hidden, hidden] → [hidden, 4·hidden] (gates i, f, g, o = tfjs i, f, c, o)",
};
const NUM_BATCHES_UNUSED =
  "unused: PyTorch's count of BatchNorm batches; TensorFlow.js has no counterpart (it only matters for momentum=None)";

const RULES: Readonly<Record<string, Readonly<Record<string, ParamRule>>>> = {
  Dense: { weight: { tail: "kernel", layout: TRANSPOSE }, bias: { tail: "bias" } },
  Conv1D: { weight: { tail: "kernel", layout: CONV1D }, bias: { tail: "bias" } },
  Conv2D: { weight: { tail: "kernel", layout: CONV2D }, bias: { tail: "bias" } },
  BatchNormalization: {
    weight: { tail: "gamma" },
    bias: { tail: "beta" },
    running_mean: { tail: "moving_mean" },
    running_var: { tail: "moving_variance" },
    num_batches_tracked: { unused: NUM_BATCHES_UNUSED },
  },
  LayerNormalization: { weight: { tail: "gamma" }, bias: { tail: "beta" } },
  Embedding: { weight: { tail: "embeddings" } },
  LSTM: {
    weight_ih_l0: { tail: "kernel", layout: LSTM_INPUT },
    weight_hh_l0: { tail: "recurrent_kernel", layout: LSTM_RECURRENT },
  },
};

export interface MappedStateDict {
  /** Values by tfjs weight name (or by PyTorch key when nothing maps them), in checkpoint order. */
  tensors: Map<string, MappedSourceTensor>;
  /** PyTorch keys with no tfjs counterpart, and why. */
  unused: Map<string, string>;
  /** Differences the mapping cannot fix (a BatchNorm epsilon other than PyTorch's default...). */
  warnings: string[];
}

interface LayerInfo {
  layer: Layer;
  path: string;
  className: string;
  weights: Map<string, ModelWeight>;
}

function moduleAndParam(key: string): [string, string] {
  const dot = key.lastIndexOf(".");
  return dot === -1 ? ["", key] : [key.slice(0, dot), key.slice(dot + 1)];
}

/** The layer a PyTorch module path names (see the rule above), or undefined. */
export function layerForModule(
  module: string,
  layers: ReadonlyMap<string, unknown>,
): string | undefined {
  if (module === "") return undefined;
  const last = module.slice(module.lastIndexOf(".") + 1);
  for (const candidate of [module.replaceAll(".", "/"), module.replaceAll(".", "_"), last]) {
    if (layers.has(candidate)) return candidate;
  }
  return undefined;
}

function checkRank(key: string, tensor: Tensor, layout: Layout, layer: LayerInfo): void {
  if (tensor.shape.length === layout.perm.length) return;
  throw new LoadError(
    "LAYOUT_MISMATCH",
    `'${key}' has shape ${formatShape(tensor.shape)}, which does not fit tfjs ${layer.className} layer '${layer.path}' (expected rank ${layout.perm.length})`,
    { key, hint: "The module was paired with the wrong layer: add a key_map rule." },
  );
}

/** What the tfjs layer computes differently from PyTorch's defaults, as warnings. */
function layerWarnings(info: LayerInfo): string[] {
  const layer = info.layer as unknown as Record<string, unknown>;
  const warnings: string[] = [];
  if (info.className === "BatchNormalization" || info.className === "LayerNormalization") {
    const epsilon = layer.epsilon;
    if (typeof epsilon === "number" && epsilon !== 1e-5) {
      warnings.push(
        `tfjs layer '${info.path}' has epsilon ${epsilon}; PyTorch's ${info.className === "BatchNormalization" ? "BatchNorm" : "LayerNorm"} default is 1e-5 (set epsilon: 1e-5 for the same outputs)`,
      );
    }
  }
  if (info.className === "LSTM") {
    const cell = layer.cell as Record<string, { getClassName?: () => string }> | undefined;
    const recurrent = cell?.recurrentActivation?.getClassName?.();
    if (recurrent !== undefined && recurrent !== "sigmoid") {
      warnings.push(
        `tfjs LSTM '${info.path}' has recurrentActivation ${recurrent}; PyTorch's LSTM uses sigmoid (set recurrentActivation: 'sigmoid')`,
      );
    }
  }
  return warnings;
}

/**
 * Maps a PyTorch state dict onto a tfjs model's names and layouts (rules above). Keys nothing
 * maps keep their PyTorch name, so the plan lists them as unexpected.
 */
export function mapPytorchStateDict(
  tensors: ReadonlyMap<string, Tensor>,
  model: LayersModel,
  options: PytorchToTfjsOptions = {},
): MappedStateDict {
  const weights = listModelWeights(model);
  const layers = new Map<string, LayerInfo>();
  for (const { layer, path } of leafLayers(model)) {
    layers.set(path, { layer, path, className: layer.getClassName(), weights: new Map() });
  }
  for (const weight of weights) layers.get(weight.layerPath)?.weights.set(weight.tail, weight);

  const keys = [...tensors.keys()];
  const renamed = applyKeyMap(keys, options.keyMap ?? []).names;
  const claimedBy = new Map<string, string>();
  const layerOfKey = new Map<string, { info: LayerInfo; param: string }>();
  const keysOfLayer = new Map<LayerInfo, Map<string, string>>();
  keys.forEach((key, i) => {
    const [module, param] = moduleAndParam(renamed[i]!);
    const path = layerForModule(module, layers);
    if (path === undefined) return;
    const owner = claimedBy.get(path);
    if (owner !== undefined && owner !== module) {
      throw new AmbiguousKeyError(
        "AMBIGUOUS_LAYER",
        `PyTorch modules '${owner}' and '${module}' both map to tfjs layer '${path}'`,
        { key, hint: "Add a key_map rule that renames one of them to its layer's name." },
      );
    }
    claimedBy.set(path, module);
    const info = layers.get(path)!;
    layerOfKey.set(key, { info, param });
    const params = keysOfLayer.get(info) ?? new Map<string, string>();
    params.set(param, key);
    keysOfLayer.set(info, params);
  });

  const mapped = new Map<string, MappedSourceTensor>();
  const unused = new Map<string, string>();
  const add = (name: string, value: MappedSourceTensor, key: string) => {
    if (mapped.has(name)) {
      throw new AmbiguousKeyError(
        "AMBIGUOUS_LAYER",
        `two PyTorch tensors map to tfjs weight '${name}'`,
        { key, hint: "Add a key_map rule so that each module names its own layer." },
      );
    }
    mapped.set(name, value);
  };
  for (const key of keys) {
    const tensor = tensors.get(key)!;
    const owner = layerOfKey.get(key);
    if (!owner) {
      add(key, layoutSource(key, tensor), key);
      continue;
    }
    const { info, param } = owner;
    if (info.className === "LSTM" && LSTM_BIASES.includes(param)) {
      const bias = lstmBias(info, keysOfLayer.get(info)!, tensors);
      // The pair is added once, where its first key is.
      if (bias && key === bias.value.sources[0]) add(bias.name, bias.value, key);
      if (!bias) add(key, layoutSource(key, tensor), key);
      continue;
    }
    const rule: ParamRule = RULES[info.className]?.[param] ?? { tail: param };
    if (rule.unused) {
      unused.set(key, rule.unused);
      add(key, unusedSource(key, tensor, rule.unused), key);
      continue;
    }
    const target = rule.tail === undefined ? undefined : info.weights.get(rule.tail);
    if (!target) {
      add(key, layoutSource(key, tensor), key);
      continue;
    }
    if (rule.layout) checkRank(key, tensor, rule.layout, info);
    // The plan names the value by its tfjs name; the label says which checkpoint key it was.
    const label = rule.layout ? `${rule.layout.label} of ${key}` : `renamed from ${key}`;
    add(
      target.name,
      layoutSource(key, tensor, { layout: rule.layout, label, targetDtype: target.dtype }),
      key,
    );
  }
  const warnings = [...keysOfLayer.keys()].flatMap(layerWarnings);
  return { tensors: mapped, unused, warnings };
}

const LSTM_BIASES = ["bias_ih_l0", "bias_hh_l0"];

/** An LSTM's `bias`: bias_ih_l0 + bias_hh_l0 (in checkpoint order), when it has both and a bias. */
function lstmBias(
  info: LayerInfo,
  params: ReadonlyMap<string, string>,
  tensors: ReadonlyMap<string, Tensor>,
): { name: string; value: MappedSourceTensor } | undefined {
  const ih = params.get("bias_ih_l0");
  const hh = params.get("bias_hh_l0");
  const target = info.weights.get("bias");
  if (ih === undefined || hh === undefined || !target) return undefined;
  const [a, b] = [tensors.get(ih)!, tensors.get(hh)!];
  if (a.dtype !== b.dtype || formatShape(a.shape) !== formatShape(b.shape)) {
    throw new LoadError(
      "LAYOUT_MISMATCH",
      `LSTM biases '${ih}' (${a.dtype} ${formatShape(a.shape)}) and '${hh}' (${b.dtype} ${formatShape(b.shape)}) differ`,
      { key: ih },
    );
  }
  return { name: target.name, value: sumSource([ih, hh], [a, b], `sum ${ih} + ${hh}`) };
}

/**
 * A pipeline stage, run before the strategy, that hands the planner the checkpoint's state dict
 * in tfjs names and layouts (`context.sourceStateDict`). Keys with no tfjs counterpart
 * (`num_batches_tracked`) are marked unused, so the plan lists them as unexpected with the reason
 * and strict strategies accept them; layer settings that make tfjs compute differently from
 * PyTorch become report warnings.
 */
export function pytorchToTfjsStage(
  model: LayersModel,
  options: PytorchToTfjsOptions = {},
): PipelineStage {
  return {
    name: "pytorch_to_tfjs",
    async process(context: CheckpointContext): Promise<CheckpointContext> {
      const found = context.checkpoint.requireStateDict();
      const mapped = mapPytorchStateDict(found.tensors, model, options);
      const sourceStateDict: SourceStateDict = {
        path: [...found.path],
        tensors: mapped.tensors,
        checkpointKeys: [...found.tensors.keys()],
        unused: mapped.unused,
      };
      return {
        ...context,
        sourceStateDict,
        report: {
          ...context.report,
          warnings: [...context.report.warnings, ...mapped.warnings],
        },
      };
    },
  };
}
