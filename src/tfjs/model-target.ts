import * as tf from "@tensorflow/tfjs";
import { LoadError } from "../errors.js";
import type { FaultInjection } from "../targets/memory.js";
import type { ModelTarget, ParameterInfo } from "../targets/types.js";
import { arrayKindOf, dtypeInfo, type TypedArray } from "../tensors/dtype.js";
import { formatShape, numelOf } from "../tensors/shape.js";
import { initialValue } from "./initializers.js";
import type { LayersModel, LayerVariable } from "./internals.js";
import { variableOf } from "./internals.js";
import {
  bookOf,
  captureSlotReferences,
  installSlots,
  optimizersOf,
  restoreSlotReferences,
  type SlotReferences,
  slotFieldsOf,
  slotsByWeight,
  trainingOrder,
} from "./optimizer-slots.js";
import {
  captureFlags,
  restoreFlags,
  setTrainableWeights,
  type TrainableFlags,
} from "./trainable.js";
import { injectFaults, once } from "./transactions.js";
import { listModelWeights, type ModelWeight } from "./weights.js";

/**
 * A `tf.LayersModel` as a loadout ModelTarget. Parameters are named `<layer>/<weight>` (see
 * weights.ts); BatchNorm's moving statistics are buffers. Values live in the tfjs backend, so
 * there is no live array: reads are copies, writes assign (without the weights' constraints),
 * and in_place loads write tensor by tensor. Every write keeps copies of what it replaces, so
 * its Undo puts back exactly the previous values.
 */

export interface TfjsModelTargetOptions {
  /** Makes chosen operations fail before they change anything (tests of rollback). */
  faults?: FaultInjection;
}

export interface TfjsModelTarget extends ModelTarget {
  readonly model: LayersModel;
  /** The named weight, or a LoadError. */
  weight(name: string): ModelWeight;
}

/** A copy of a weight's current value. */
export function readWeight(weight: ModelWeight): TypedArray {
  const values = variableOf(weight.variable).dataSync();
  return weight.dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values);
}

/** Assigns `values` to the weight (no constraint applied: the values are loaded as they are). */
export function assignWeight(weight: ModelWeight, values: TypedArray): void {
  const variable = variableOf(weight.variable);
  tf.tidy(() => {
    variable.assign(
      tf.tensor(values as Float32Array | Int32Array, [...weight.shape], weight.dtype),
    );
  });
}

function checkValue(weight: ModelWeight, value: TypedArray): void {
  const expected = dtypeInfo(weight.dtype).array;
  const numel = numelOf(weight.shape);
  const kind = arrayKindOf(value);
  if (kind !== expected || value.length !== numel) {
    throw new LoadError(
      "BAD_VALUE",
      `'${weight.name}' (${weight.dtype} ${formatShape(weight.shape)}) needs a ${expected} of ${numel}, got a ${kind} of ${value.length}`,
      { key: weight.name },
    );
  }
}

export function tfjsModelTarget(
  model: LayersModel,
  options: TfjsModelTargetOptions = {},
): TfjsModelTarget {
  const weights = listModelWeights(model);
  const byName = new Map(weights.map((w) => [w.name, w]));
  const faults = options.faults;

  const weight = (name: string): ModelWeight => {
    const found = byName.get(name);
    if (!found) {
      throw new LoadError("UNKNOWN_PARAMETER", `the tfjs model has no weight '${name}'`, {
        key: name,
        hint: "Names are `<layer name>/<weight name>`, e.g. `dense/kernel`.",
      });
    }
    return found;
  };

  /** Assigns each value; if one fails, puts back the ones already assigned. */
  const assignAll = (
    values: ReadonlyMap<string, TypedArray>,
    previous: Map<string, TypedArray>,
  ) => {
    const done: string[] = [];
    try {
      for (const [name, value] of values) {
        assignWeight(weight(name), value);
        done.push(name);
      }
    } catch (error) {
      for (const name of done) assignWeight(weight(name), previous.get(name)!);
      throw error;
    }
  };

  return {
    model,
    weight,

    parameters(): readonly ParameterInfo[] {
      const trainable = new Set<LayerVariable>(model.trainableWeights);
      return weights.map((w) => ({
        name: w.name,
        shape: w.shape,
        dtype: w.dtype,
        trainable: w.kind === "parameter" && trainable.has(w.variable),
        kind: w.kind,
      }));
    },

    async read(name) {
      return readWeight(weight(name));
    },

    /**
     * Assigns every value after checking them all. Like MemoryModel.write, it takes the arrays:
     * the cpu backend keeps them as the weights' storage, so callers must not reuse them.
     */
    async write(values) {
      for (const [name, value] of values) checkValue(weight(name), value);
      injectFaults(faults, "write", values.keys());
      const previous = new Map([...values.keys()].map((name) => [name, readWeight(weight(name))]));
      assignAll(values, previous);
      return once(() => assignAll(previous, new Map(values)));
    },

    async setTrainable(names, trainable) {
      const changes = new Map<LayerVariable, { layer: ModelWeight["layer"]; trainable: boolean }>();
      for (const name of names) {
        const w = weight(name);
        if (w.kind === "buffer" && trainable) {
          throw new LoadError("TRAINABLE_BUFFER", `'${name}' is a buffer and cannot be trained`, {
            key: name,
          });
        }
        if (w.kind === "parameter") changes.set(w.variable, { layer: w.layer, trainable });
      }
      injectFaults(faults, "setTrainable", names);
      // Every optimizer must be understood (and in step) before anything changes.
      const optimizers = optimizersOf(model);
      for (const optimizer of optimizers) {
        slotFieldsOf(optimizer);
        bookOf(optimizer, model);
      }
      const flags: TrainableFlags = captureFlags(
        model,
        weights.map((w) => w.layer),
      );
      const slots: SlotReferences[] = optimizers.map(captureSlotReferences);
      const restore = () => {
        restoreFlags(model, flags);
        for (const captured of slots) restoreSlotReferences(captured);
      };
      try {
        setTrainableWeights(model, changes);
        const nowTrainable = new Set<LayerVariable>(model.trainableWeights);
        for (const [variable, change] of changes) {
          if (change.trainable && !nowTrainable.has(variable)) {
            throw new LoadError(
              "CANNOT_UNFREEZE",
              `'${variable.originalName}' stays frozen: a model it is nested in is not trainable`,
              { hint: "Set `trainable = true` on the enclosing model first." },
            );
          }
        }
        for (const optimizer of optimizers) {
          installSlots(optimizer, trainingOrder(model), slotsByWeight(optimizer, model));
        }
      } catch (error) {
        restore();
        throw error;
      }
      return once(restore);
    },

    async initialValues(names) {
      const result = new Map<string, TypedArray>();
      for (const name of names) result.set(name, initialValue(weight(name)));
      return result;
    },
  };
}
