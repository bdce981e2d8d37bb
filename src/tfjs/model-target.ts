import { LoadError } from "../errors.js";
import { type FaultInjection, injectFaults, once } from "../targets/transactions.js";
import type { ModelTarget, ParameterInfo, Undo } from "../targets/types.js";
import { arrayKindOf, dtypeInfo, type TypedArray } from "../tensors/dtype.js";
import { formatShape, numelOf } from "../tensors/shape.js";
import { initialValue } from "./initializers.js";
import type { LayersModel, LayerVariable } from "./internals.js";
import { cpuStorageOf, variableOf } from "./internals.js";
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
import { assignKeepingPrevious, type Replaced } from "./replaced-values.js";
import {
  captureFlags,
  restoreFlags,
  setTrainableWeights,
  type TrainableFlags,
} from "./trainable.js";
import { listModelWeights, type ModelWeight } from "./weights.js";

/**
 * A `tf.LayersModel` as a loadout ModelTarget. Parameters are named `<layer>/<weight>` (see
 * weights.ts); BatchNorm's moving statistics are buffers. Values live in the tfjs backend: reads
 * are copies, writes assign (without the weights' constraints), and in_place loads read straight
 * into the weights' arrays on the cpu backend (liveArray), else write tensor by tensor. Every
 * write keeps the values it replaces, as backend tensors sharing their data (no copy;
 * replaced-values.ts), so that its Undo puts back exactly the previous values; they are dropped
 * by the Undo, by `release()` (which the load pipeline calls when a load ends), or, for an Undo
 * dropped unused, when it is garbage-collected.
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

/** A copy of a weight's current value (the cpu backend's dataSync returns its own storage). */
export function readWeight(weight: ModelWeight): TypedArray {
  const values = variableOf(weight.variable).dataSync();
  const expected = dtypeInfo(weight.dtype).array;
  if (arrayKindOf(values as TypedArray) === expected) return (values as TypedArray).slice();
  return weight.dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values);
}

/**
 * Drops the previous values of a write whose Undo was garbage-collected without being called
 * or released (a caller of write() outside the pipeline that never calls release()).
 */
const forgottenWrites = new FinalizationRegistry<() => void>((drop) => drop());

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

  /** What writes replaced, kept until their Undo runs or the load ends. */
  const outstanding = new Set<Replaced>();

  /** The Undo of a write: restores the replaced values once, and not after release(). */
  const undoOf = (replaced: Replaced): Undo => {
    const forget = () => {
      outstanding.delete(replaced);
      forgottenWrites.unregister(replaced);
    };
    const undo: Undo = async () => {
      if (!outstanding.has(replaced)) {
        if (replaced.restored) return;
        throw new LoadError(
          "UNDO_RELEASED",
          "this write can no longer be undone: the values it replaced were released when its load ended",
          { hint: "Undo a write before release() (the load pipeline calls it when a load ends)." },
        );
      }
      forget();
      replaced.restore();
    };
    outstanding.add(replaced);
    forgottenWrites.register(
      undo,
      () => {
        outstanding.delete(replaced);
        replaced.release();
      },
      replaced,
    );
    return undo;
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
      const replaced = assignKeepingPrevious(
        [...values].map(([name, value]) => {
          const w = weight(name);
          return {
            variable: variableOf(w.variable),
            values: value,
            shape: w.shape,
            dtype: w.dtype,
          };
        }),
      );
      return undoOf(replaced);
    },

    /**
     * On the cpu backend, the array the backend keeps the weight in (when no other tensor shares
     * it), so that in_place loads read straight into the model; undefined elsewhere.
     */
    liveArray(name) {
      const w = weight(name);
      const storage = cpuStorageOf(variableOf(w.variable));
      if (!storage || arrayKindOf(storage) !== dtypeInfo(w.dtype).array) return undefined;
      return storage.length === numelOf(w.shape) ? storage : undefined;
    },

    release() {
      for (const replaced of outstanding) {
        forgottenWrites.unregister(replaced);
        replaced.release();
      }
      outstanding.clear();
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
