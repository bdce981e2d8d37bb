import * as tf from "@tensorflow/tfjs";
import { LoadError } from "../errors.js";
import { type FaultInjection, injectFaults, once } from "../targets/transactions.js";
import type {
  Hyperparameters,
  OptimizerState,
  OptimizerTarget,
  ParameterState,
  Undo,
} from "../targets/types.js";
import type { TypedArray } from "../tensors/dtype.js";
import { numelOf } from "../tensors/shape.js";
import {
  iterationsOf,
  type LayersModel,
  type LayerVariable,
  numberField,
  type Optimizer,
  type SlotEntry,
  setIterations,
  slotArray,
  variableField,
} from "./internals.js";
import {
  NEUTRAL_HYPERPARAMETERS,
  type OptimizerKind,
  optimizerKind,
  readHyper,
  type TfjsOptimizerType,
} from "./optimizer-kinds.js";
import {
  attachOptimizer,
  bookContents,
  disposeAllSlots,
  installSlots,
  setSlotsExactly,
  slotFieldsOf,
  slotsByWeight,
  trainingOrder,
} from "./optimizer-slots.js";
import { listModelWeights, type ModelWeight } from "./weights.js";

/**
 * A tfjs optimizer (adam, sgd, momentum, rmsprop, adagrad) as a loadout OptimizerTarget, its state
 * keyed by the model's parameter names (`fc/kernel`) and in PyTorch's terms (optimizer-kinds.ts),
 * so that a PyTorch optimizer state and one loadout wrote from tfjs load the same way.
 *
 * tfjs keeps slots by position in the list of trainable weights; setState puts each parameter's
 * state at that parameter's position (frozen parameters' state is set aside until they train
 * again), and checks every length first. The iteration count is PyTorch's per-parameter `step`,
 * which must be the same for every parameter. Adam's bias correction lives in running powers
 * accBeta1/accBeta2: after t steps tfjs holds beta^(t+1) (multiplied out in float32 as its own
 * steps do), so a restored optimizer takes bit for bit the step the saved one would have.
 *
 * Hyperparameters are carried explicitly: lr, betas, eps... are set from the state (PyTorch's
 * Adam eps 1e-8 replaces tfjs's default 1e-7; `notes` says so). A PyTorch hyperparameter tfjs
 * cannot apply (AdamW's weight_decay, amsgrad...) is refused unless it is at its neutral value
 * or listed in `allowDropped`.
 */

export interface TfjsOptimizerTargetOptions {
  /** Makes chosen operations fail before they change anything (tests of rollback). */
  faults?: FaultInjection;
  /** PyTorch hyperparameters the caller accepts losing (e.g. `["weight_decay"]`). */
  allowDropped?: readonly string[];
}

export interface TfjsOptimizerTarget extends OptimizerTarget {
  readonly type: TfjsOptimizerType;
  readonly optimizer: Optimizer;
  /** What the last setState or reset changed beyond slot values (hyperparameters, dropped ones). */
  readonly notes: readonly string[];
}

interface SlotCopy {
  originalName: string;
  values: Float32Array;
  shape: number[];
}

/** Everything setState and reset change, copied, to put back exactly. */
interface Snapshot {
  layout: LayerVariable[];
  arrays: Map<string, (SlotCopy | undefined)[]>;
  stash: Map<LayerVariable, Map<string, SlotCopy>>;
  iterations: number;
  hyper: Hyperparameters;
  accBeta: number[];
}

const ACC_BETAS = ["accBeta1", "accBeta2"] as const;

function copySlot(entry: SlotEntry): SlotCopy {
  return {
    originalName: entry.originalName,
    values: Float32Array.from(entry.variable.dataSync()),
    shape: [...entry.variable.shape],
  };
}

function slotFrom(copy: SlotCopy): SlotEntry {
  return {
    originalName: copy.originalName,
    variable: tf.tidy(() => tf.tensor(copy.values, copy.shape, "float32").variable(false)),
  };
}

/** beta^(n+1) as tfjs's Adam computes it: beta, then n float32 multiplications by beta. */
export function adamBetaPower(beta: number, steps: number): number {
  const factor = Math.fround(beta);
  let power = factor;
  for (let i = 0; i < steps; i++) power = Math.fround(power * factor);
  return power;
}

function bad(what: string, key?: string, hint?: string): LoadError {
  return new LoadError("OPTIMIZER_BAD_STATE", what, { key, hint });
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function format(value: unknown): string {
  return JSON.stringify(value);
}

export function tfjsOptimizerTarget(
  optimizer: Optimizer,
  model: LayersModel,
  options: TfjsOptimizerTargetOptions = {},
): TfjsOptimizerTarget {
  const kind: OptimizerKind = optimizerKind(optimizer);
  const weights = listModelWeights(model);
  const byName = new Map(weights.map((w) => [w.name, w]));
  const allowDropped = new Set(options.allowDropped ?? []);
  const initialHyper = structuredClone(readHyper(kind, optimizer));
  const faults = options.faults;
  let notes: string[] = [];
  attachOptimizer(model, optimizer);

  const parameter = (name: string): ModelWeight => {
    const weight = byName.get(name);
    if (!weight) {
      throw new LoadError("UNKNOWN_PARAMETER", `the tfjs model has no weight '${name}'`, {
        key: name,
      });
    }
    if (weight.kind !== "parameter") {
      throw bad(`'${name}' is a buffer: an optimizer has no state for it`, name);
    }
    return weight;
  };

  const setAccBetas = (steps: number) => {
    if (kind.type !== "adam") return;
    const betas = [numberField(optimizer, "beta1"), numberField(optimizer, "beta2")];
    ACC_BETAS.forEach((field, i) => {
      const variable = variableField(optimizer, field);
      if (!variable) throw bad(`the tfjs Adam optimizer has no ${field}`);
      tf.tidy(() => variable.assign(tf.scalar(adamBetaPower(betas[i]!, steps))));
    });
  };

  const applyHyper = (hyper: Hyperparameters) => {
    for (const field of kind.hyper) {
      if (field.set && Object.hasOwn(hyper, field.torch)) field.set(optimizer, hyper[field.torch]!);
    }
  };

  const capture = (): Snapshot => {
    const { layout, stash } = bookContents(optimizer, model);
    const arrays = new Map<string, (SlotCopy | undefined)[]>();
    for (const { field } of slotFieldsOf(optimizer)) {
      arrays.set(
        field,
        slotArray(optimizer, field).map((entry) => (entry ? copySlot(entry) : undefined)),
      );
    }
    return {
      layout,
      arrays,
      stash: new Map(
        [...stash].map(([w, slots]) => [w, new Map([...slots].map(([f, e]) => [f, copySlot(e)]))]),
      ),
      iterations: iterationsOf(optimizer),
      hyper: structuredClone(readHyper(kind, optimizer)),
      accBeta: ACC_BETAS.map((f) => variableField(optimizer, f)?.dataSync()[0] ?? Number.NaN),
    };
  };

  const restore = (snapshot: Snapshot) => {
    disposeAllSlots(optimizer, model);
    applyHyper(snapshot.hyper);
    const arrays = new Map(
      [...snapshot.arrays].map(([f, copies]) => [
        f,
        copies.map((c) => (c ? slotFrom(c) : undefined)),
      ]),
    );
    const stash = new Map(
      [...snapshot.stash].map(([w, slots]) => [
        w,
        new Map([...slots].map(([f, c]) => [f, slotFrom(c)])),
      ]),
    );
    setSlotsExactly(optimizer, snapshot.layout, arrays, stash);
    setIterations(optimizer, snapshot.iterations);
    ACC_BETAS.forEach((field, i) => {
      const variable = variableField(optimizer, field);
      if (variable) tf.tidy(() => variable.assign(tf.scalar(snapshot.accBeta[i]!)));
    });
  };

  /** Runs `change` after a snapshot; on failure puts the snapshot back. Returns the Undo. */
  const transaction = (change: () => void): Undo => {
    const snapshot = capture();
    try {
      change();
    } catch (error) {
      restore(snapshot);
      throw error;
    }
    return once(() => restore(snapshot));
  };

  /** The one set of hyperparameters to apply, checked; notes what changes or is dropped. */
  const checkHyper = (state: OptimizerState, found: string[]): Hyperparameters => {
    const applied: Hyperparameters = {};
    const current = readHyper(kind, optimizer);
    const known = new Map(kind.hyper.map((f) => [f.torch, f]));
    state.groups.forEach((group, g) => {
      for (const [key, value] of Object.entries(group.hyper)) {
        if (NEUTRAL_HYPERPARAMETERS.has(key)) continue;
        const field = known.get(key);
        if (field) {
          if (g > 0 && !sameValue(applied[key], value)) {
            throw bad(
              `param groups 0 and ${g} differ in ${key} (${format(applied[key])} vs ${format(value)}); a tfjs optimizer has one set of hyperparameters`,
              key,
            );
          }
          if (g === 0) applied[key] = value;
          continue;
        }
        const neutral = kind.absent[key];
        if (neutral !== undefined && sameValue(neutral, value)) continue;
        if (allowDropped.has(key)) {
          found.push(`${key} ${format(value)} dropped: tfjs ${kind.type} has no such setting`);
          continue;
        }
        throw new LoadError(
          "OPTIMIZER_UNSUPPORTED_SETTING",
          `${key} ${format(value)} cannot be applied: tfjs ${kind.type} has no such setting`,
          {
            key,
            hint: `Pass allowDropped: ["${key}"] to tfjsOptimizerTarget to load without it, or use a strategy that resets the optimizer.`,
          },
        );
      }
    });
    for (const [key, value] of Object.entries(applied)) {
      const field = known.get(key)!;
      if (sameValue(current[key], value)) continue;
      if (!field.set) {
        if (allowDropped.has(key)) {
          found.push(
            `${key} ${format(value)} dropped: tfjs ${kind.type} uses ${format(current[key])}`,
          );
          delete applied[key];
          continue;
        }
        throw new LoadError(
          "OPTIMIZER_UNSUPPORTED_SETTING",
          `${key} ${format(value)} cannot be applied: tfjs ${kind.type} always uses ${format(current[key])}`,
          { key, hint: `Pass allowDropped: ["${key}"] to tfjsOptimizerTarget to load anyway.` },
        );
      }
      found.push(`${key} ${format(current[key])} → ${format(value)}`);
    }
    return applied;
  };

  /** Each parameter's new slot values by tfjs slot array, checked; and the one step count. */
  const checkSlots = (state: OptimizerState, lr: number, found: string[]) => {
    const grouped = new Set<string>();
    for (const group of state.groups) {
      for (const name of group.params) {
        parameter(name);
        if (grouped.has(name)) throw bad(`parameter '${name}' is in two param groups`, name);
        grouped.add(name);
      }
    }
    const slots = new Map<ModelWeight, Map<string, Float32Array>>();
    const steps = new Set<number>();
    let withoutStep = 0;
    let scaled = 0;
    for (const [name, entry] of state.state) {
      const weight = parameter(name);
      if (!grouped.has(name)) throw bad(`state for '${name}', which no param group lists`, name);
      for (const [key, value] of Object.entries(entry.scalars)) {
        if (key !== "step") {
          throw bad(`state entry ${key} of '${name}' has no tfjs ${kind.type} counterpart`, name);
        }
        if (!Number.isSafeInteger(value) || value < 0) {
          throw bad(`step of '${name}' is ${value}, not a count`, name);
        }
        steps.add(value);
      }
      if (entry.scalars.step === undefined) withoutStep++;
      slots.set(
        weight,
        slotValues(weight, entry, lr, () => scaled++),
      );
    }
    if (steps.size > 1) {
      throw bad(
        `parameters were stepped different numbers of times (${[...steps].join(", ")}); a tfjs optimizer keeps one iteration count`,
        undefined,
        "Load with a strategy that resets the optimizer.",
      );
    }
    if (kind.type === "adam" && withoutStep > 0 && state.state.size > 0) {
      throw bad("Adam state without a step count: its bias correction cannot be restored");
    }
    if (scaled > 0) {
      found.push(
        `momentum_buffer of ${scaled} parameter(s) multiplied by lr ${lr}: tfjs RMSProp keeps lr × PyTorch's buffer (and adds eps inside the square root)`,
      );
    }
    return { slots, iterations: steps.size === 1 ? [...steps][0]! : 0 };
  };

  const slotValues = (
    weight: ModelWeight,
    entry: ParameterState,
    lr: number,
    onScaled: () => void,
  ): Map<string, Float32Array> => {
    const values = new Map<string, Float32Array>();
    const numel = numelOf(weight.shape);
    for (const [key, array] of entry.tensors) {
      const direct = kind.slots.find((s) => s.torch === key);
      const foreign = kind.foreignSlots?.[key];
      const field = direct?.field ?? foreign?.field;
      if (!field) {
        throw bad(
          `state entry ${key} of '${weight.name}' has no tfjs ${kind.type} counterpart`,
          weight.name,
          kind.slots.length > 0
            ? `tfjs ${kind.type} keeps ${kind.slots.map((s) => s.torch).join(", ")}.`
            : `tfjs ${kind.type} keeps no per-parameter state.`,
        );
      }
      if (array.length !== numel) {
        throw bad(
          `${key} of '${weight.name}' has ${array.length} elements; the parameter has ${numel}`,
          weight.name,
        );
      }
      const copy = Float32Array.from(array as ArrayLike<number>);
      if (foreign?.timesLr) {
        for (let i = 0; i < copy.length; i++) copy[i] = copy[i]! * lr;
        onScaled();
      }
      values.set(field, copy);
    }
    return values;
  };

  return {
    type: kind.type,
    optimizer,
    get notes() {
      return notes;
    },

    getState(): OptimizerState {
      const byWeight = slotsByWeight(optimizer, model);
      const iterations = iterationsOf(optimizer);
      const active = new Set(trainingOrder(model));
      const state = new Map<string, ParameterState>();
      for (const weight of weights) {
        if (weight.kind !== "parameter") continue;
        const slots = byWeight.get(weight.variable);
        const tensors = new Map<string, TypedArray>();
        for (const { torch, field } of kind.slots) {
          const entry = slots?.get(field);
          if (entry) tensors.set(torch, Float32Array.from(entry.variable.dataSync()));
        }
        // A parameter with slots, or (optimizers without slots) one being trained, records the step.
        if (tensors.size > 0 || (iterations > 0 && active.has(weight.variable))) {
          state.set(weight.name, { scalars: { step: iterations }, tensors });
        }
      }
      const params = weights.filter((w) => w.kind === "parameter").map((w) => w.name);
      return {
        type: kind.type,
        groups: [{ params, hyper: structuredClone(readHyper(kind, optimizer)) }],
        state,
      };
    },

    async setState(state) {
      const found: string[] = [];
      const hyper = checkHyper(state, found);
      const lr = typeof hyper.lr === "number" ? hyper.lr : numberField(optimizer, "learningRate");
      const { slots, iterations } = checkSlots(state, lr, found);
      injectFaults(faults, "setState", state.state.keys());
      const undo = transaction(() => {
        disposeAllSlots(optimizer, model);
        applyHyper(hyper);
        const byWeight = new Map<LayerVariable, Map<string, SlotEntry>>();
        for (const [weight, values] of slots) {
          const entries = new Map<string, SlotEntry>();
          const suffixes = new Map(slotFieldsOf(optimizer).map((f) => [f.field, f.suffix]));
          for (const [field, array] of values) {
            const suffix = suffixes.get(field);
            if (suffix === undefined) {
              throw bad(
                `'${weight.name}' has state for ${field}, which this optimizer does not use`,
              );
            }
            entries.set(
              field,
              slotFrom({
                originalName: `${weight.variable.name}/${suffix}`,
                values: array,
                shape: [...weight.shape],
              }),
            );
          }
          byWeight.set(weight.variable, entries);
        }
        installSlots(optimizer, trainingOrder(model), byWeight);
        setIterations(optimizer, iterations);
        setAccBetas(iterations);
      });
      notes = found;
      return undo;
    },

    async reset() {
      injectFaults(faults, "reset", []);
      const found: string[] = [];
      const current = readHyper(kind, optimizer);
      for (const [key, value] of Object.entries(initialHyper)) {
        if (!sameValue(current[key], value)) {
          found.push(`${key} ${format(current[key])} → ${format(value)}`);
        }
      }
      const undo = transaction(() => {
        disposeAllSlots(optimizer, model);
        applyHyper(initialHyper);
        setIterations(optimizer, 0);
        setAccBetas(0);
      });
      notes = found;
      return undo;
    },
  };
}
