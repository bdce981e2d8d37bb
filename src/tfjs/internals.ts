import * as tf from "@tensorflow/tfjs";
import type { TypedArray } from "../tensors/dtype.js";

/**
 * The one place that reaches into TensorFlow.js objects beyond their public API (tfjs 4.x).
 * Loading must assign values without running weight constraints, tell a frozen parameter from a
 * buffer, and keep an optimizer's positional slots in step with the model's trainable weights;
 * tfjs exposes none of that, so each field used is named here with what it holds.
 */

export type LayersModel = tf.LayersModel;
export type Layer = tf.layers.Layer;
export type Optimizer = tf.Optimizer;
/** tfjs-layers' LayerVariable (not exported under its own name). */
export type LayerVariable = Layer["weights"][number];

/** A slot of an optimizer: one per trainable variable, by position. */
export interface SlotEntry {
  originalName: string;
  variable: tf.Variable;
}

interface LayerInternals {
  /** Weights created trainable (a frozen one has `trainable` false but stays here). */
  _trainableWeights?: LayerVariable[];
  /** Weights that are never trained (BatchNorm's moving statistics). */
  _nonTrainableWeights?: LayerVariable[];
}

/** Layers whose weights another layer holds: an RNN's cell(s), a wrapper's layer, Bidirectional's two. */
const INNER_LAYER_FIELDS = ["cell", "cells", "layer", "forwardLayer", "backwardLayer"] as const;

function innerLayers(layer: Layer): Layer[] {
  const record = layer as unknown as Record<string, unknown>;
  const inner: Layer[] = [];
  for (const field of INNER_LAYER_FIELDS) {
    const value = record[field];
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item && Array.isArray((item as LayerInternals)._trainableWeights))
        inner.push(item as Layer);
    }
  }
  return inner;
}

/**
 * The weights a layer created as trainable and as non-trainable, in creation order, including
 * those of the layers it wraps (an LSTM's cell creates the LSTM's weights).
 */
export function layerWeightLists(layer: Layer): {
  trainable: LayerVariable[];
  nonTrainable: LayerVariable[];
} {
  const trainable: LayerVariable[] = [];
  const nonTrainable: LayerVariable[] = [];
  const stack: Layer[] = [layer];
  const seen = new Set<Layer>();
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    const internals = current as unknown as LayerInternals;
    if (Array.isArray(internals._trainableWeights)) trainable.push(...internals._trainableWeights);
    if (Array.isArray(internals._nonTrainableWeights)) {
      nonTrainable.push(...internals._nonTrainableWeights);
    }
    stack.push(...innerLayers(current).reverse());
  }
  if (trainable.length === 0 && nonTrainable.length === 0 && layer.weights.length > 0) {
    // Unknown layouts: fall back on the current flags (a frozen parameter then reads as a buffer).
    return { trainable: [...layer.trainableWeights], nonTrainable: [...layer.nonTrainableWeights] };
  }
  return { trainable, nonTrainable };
}

/** The tf.Variable behind a LayerVariable: assigning it skips the weight's constraint. */
export function variableOf(weight: LayerVariable): tf.Variable {
  return (weight as unknown as { val: tf.Variable }).val;
}

/** Largest size of the wasm backend's memory (32-bit wasm: 4 GiB less one 64 KiB page). */
const WASM_MEMORY_LIMIT = 2 ** 32 - 2 ** 16;

/**
 * Bytes the wasm backend's memory can still grow by, when it is the active backend; undefined on
 * others (the cpu backend's arrays are ordinary JavaScript memory). Reads the Emscripten module's
 * `HEAPU8` (the whole wasm memory) on the backend's `wasm` field.
 */
export function wasmMemoryHeadroom(): number | undefined {
  if (tf.getBackend() !== "wasm") return undefined;
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? WASM_MEMORY_LIMIT - heap.byteLength : undefined;
}

/** The cpu backend's record of one data id: the values and how many tensors refer to them. */
interface CpuData {
  values?: unknown;
  refCount?: number;
  complexTensorInfos?: unknown;
}

/**
 * The array the cpu backend keeps a variable's value in, when that variable alone refers to it
 * (reference count 1: no other tensor shares the data), else undefined. Writing into it changes
 * the variable in place. Other backends keep values elsewhere (the wasm heap, whose views a
 * memory growth detaches; the GPU): undefined. Reads `engine.state.tensorInfo` (which backend
 * holds a data id) and the cpu backend's `data` store.
 */
export function cpuStorageOf(variable: tf.Variable): TypedArray | undefined {
  if (variable.isDisposed) return undefined;
  const engine = tf.engine() as unknown as {
    state: { tensorInfo: Map<object, { backend: unknown }> };
  };
  const holder = engine.state.tensorInfo.get(variable.dataId)?.backend;
  if (holder === undefined || tf.getBackend() !== "cpu" || holder !== tf.backend()) {
    return undefined;
  }
  const store = (holder as { data?: { get?(id: object): CpuData | undefined } }).data;
  const data = store?.get?.(variable.dataId);
  if (data?.refCount !== 1 || data.complexTensorInfos) return undefined;
  const { values } = data;
  return values instanceof Float32Array || values instanceof Int32Array ? values : undefined;
}

interface ModelInternals {
  /** Trainable weights captured by compile(): what fit()/trainOnBatch() hand the optimizer. */
  collectedTrainableWeights?: LayerVariable[] | null;
  optimizer_?: Optimizer | null;
}

/**
 * The model that compiles and trains: a Sequential delegates compile() and fit() to an inner
 * LayersModel (`model`), which holds the collected weights and the optimizer.
 */
function trainingModel(model: LayersModel): ModelInternals {
  const inner = (model as unknown as { model?: unknown }).model;
  const target = inner && typeof inner === "object" && "layers" in inner ? inner : model;
  return target as unknown as ModelInternals;
}

/** The weights training passes to the optimizer, or undefined when the model is not compiled. */
export function collectedTrainableWeights(model: LayersModel): LayerVariable[] | undefined {
  const list = trainingModel(model).collectedTrainableWeights;
  return Array.isArray(list) ? list : undefined;
}

export function setCollectedTrainableWeights(model: LayersModel, list: LayerVariable[]): void {
  trainingModel(model).collectedTrainableWeights = list;
}

/** The optimizer the model was compiled with, if any. */
export function compiledOptimizer(model: LayersModel): Optimizer | undefined {
  return trainingModel(model).optimizer_ ?? undefined;
}

/** Optimizer fields by name: slot arrays, hyperparameters, Adam's running beta powers. */
type OptimizerFields = Record<string, unknown> & { iterations_?: number };

export function optimizerFields(optimizer: Optimizer): OptimizerFields {
  return optimizer as unknown as OptimizerFields;
}

/** A slot array of the optimizer (`accumulatedFirstMoment`...), creating it when absent. */
export function slotArray(optimizer: Optimizer, field: string): (SlotEntry | undefined)[] {
  const fields = optimizerFields(optimizer);
  const value = fields[field];
  if (Array.isArray(value)) return value as (SlotEntry | undefined)[];
  const created: (SlotEntry | undefined)[] = [];
  fields[field] = created;
  return created;
}

export function setSlotArray(
  optimizer: Optimizer,
  field: string,
  entries: (SlotEntry | undefined)[],
): void {
  optimizerFields(optimizer)[field] = entries;
}

export function iterationsOf(optimizer: Optimizer): number {
  return optimizerFields(optimizer).iterations_ ?? 0;
}

export function setIterations(optimizer: Optimizer, iterations: number): void {
  optimizerFields(optimizer).iterations_ = iterations;
}

export function numberField(optimizer: Optimizer, field: string): number {
  const value = optimizerFields(optimizer)[field];
  return typeof value === "number" ? value : Number.NaN;
}

export function setNumberField(optimizer: Optimizer, field: string, value: number): void {
  optimizerFields(optimizer)[field] = value;
}

/** A scalar tf.Variable field (Adam's accBeta1), or undefined. */
export function variableField(optimizer: Optimizer, field: string): tf.Variable | undefined {
  const value = optimizerFields(optimizer)[field] as { assign?: unknown } | undefined;
  return value && typeof value.assign === "function" ? (value as tf.Variable) : undefined;
}

/** A scalar tensor field (Momentum's `m`, SGD's `c`), or undefined. */
export function tensorField(optimizer: Optimizer, field: string): tf.Tensor | undefined {
  const value = optimizerFields(optimizer)[field] as { dataSync?: unknown } | undefined;
  return value && typeof value.dataSync === "function" ? (value as tf.Tensor) : undefined;
}

export function setTensorField(optimizer: Optimizer, field: string, tensor: tf.Tensor): void {
  optimizerFields(optimizer)[field] = tensor;
}
