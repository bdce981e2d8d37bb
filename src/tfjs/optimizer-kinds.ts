import * as tf from "@tensorflow/tfjs";
import { LoadError } from "../errors.js";
import type { Hyperparameters } from "../targets/types.js";
import {
  numberField,
  type Optimizer,
  optimizerFields,
  setNumberField,
  setTensorField,
  tensorField,
} from "./internals.js";

/**
 * The five tfjs optimizers loadout restores, described in PyTorch's terms: which PyTorch state
 * entry each slot array holds, and which PyTorch hyperparameter each field is.
 *
 * | tfjs       | slots (PyTorch name ← tfjs array)                              | hyperparameters          |
 * |------------|----------------------------------------------------------------|--------------------------|
 * | adam       | exp_avg ← accumulatedFirstMoment, exp_avg_sq ← accumulatedSecondMoment | lr, betas, eps   |
 * | sgd        | (none)                                                         | lr                       |
 * | momentum   | momentum_buffer ← accumulations                                | lr, momentum, nesterov   |
 * | rmsprop    | square_avg ← accumulatedMeanSquares, scaled_momentum_buffer ← accumulatedMoments, grad_avg ← accumulatedMeanGrads | lr, alpha, momentum, eps, centered |
 * | adagrad    | sum ← accumulatedGrads                                         | lr, initial_accumulator_value, eps (fixed) |
 *
 * tfjs's RMSProp moment is PyTorch's momentum_buffer times the learning rate, so it is kept
 * under its own name (exact round trips); a PyTorch momentum_buffer is multiplied by lr on the
 * way in. Every optimizer also records `step` (tfjs's one iteration count) for each parameter.
 */

export type TfjsOptimizerType = "adam" | "sgd" | "momentum" | "rmsprop" | "adagrad";

export interface SlotMapping {
  /** PyTorch's name of the per-parameter entry. */
  torch: string;
  /** The tfjs slot array. */
  field: string;
}

/** A hyperparameter tfjs has, under PyTorch's name. */
interface HyperField {
  torch: string;
  get(optimizer: Optimizer): Hyperparameters[string];
  /** Undefined when tfjs cannot change it (then only its current value is accepted). */
  set?(optimizer: Optimizer, value: Hyperparameters[string]): void;
}

export interface OptimizerKind {
  type: TfjsOptimizerType;
  /** tfjs's getClassName(). */
  className: string;
  slots: readonly SlotMapping[];
  /** PyTorch entries accepted on the way in and converted: name → (slot array, scale by lr). */
  foreignSlots?: Readonly<Record<string, { field: string; timesLr: boolean }>>;
  hyper: readonly HyperField[];
  /** PyTorch hyperparameters tfjs lacks, with the value at which leaving them out changes nothing. */
  absent: Readonly<Record<string, Hyperparameters[string]>>;
}

/** PyTorch hyperparameters that never change the arithmetic (implementation choices, scheduler bookkeeping). */
export const NEUTRAL_HYPERPARAMETERS = new Set([
  "foreach",
  "capturable",
  "differentiable",
  "fused",
  "initial_lr",
  "decoupled_weight_decay",
]);

function numeric(name: string, value: Hyperparameters[string]): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new LoadError("OPTIMIZER_BAD_STATE", `hyperparameter ${name} is not a finite number`, {
      key: name,
    });
  }
  return value;
}

function flag(name: string, value: Hyperparameters[string]): boolean {
  if (typeof value !== "boolean") {
    throw new LoadError("OPTIMIZER_BAD_STATE", `hyperparameter ${name} is not a boolean`, {
      key: name,
    });
  }
  return value;
}

const numberHyper = (torch: string, field: string): HyperField => ({
  torch,
  get: (o) => numberField(o, field),
  set: (o, v) => setNumberField(o, field, numeric(torch, v)),
});

const booleanHyper = (torch: string, field: string): HyperField => ({
  torch,
  get: (o) => optimizerFields(o)[field] === true,
  set: (o, v) => {
    optimizerFields(o)[field] = flag(torch, v);
  },
});

/** SGD and Momentum keep `-lr` as a tensor too: setLearningRate updates both. */
const sgdLearningRate: HyperField = {
  torch: "lr",
  get: (o) => numberField(o, "learningRate"),
  set: (o, v) => (o as unknown as tf.SGDOptimizer).setLearningRate(numeric("lr", v)),
};

/** Momentum keeps the momentum as a scalar tensor `m`, which setMomentum does not update. */
const momentumValue: HyperField = {
  torch: "momentum",
  get: (o) => numberField(o, "momentum"),
  set: (o, v) => {
    const momentum = numeric("momentum", v);
    setNumberField(o, "momentum", momentum);
    const previous = tensorField(o, "m");
    if (previous && previous.dataSync()[0] === Math.fround(momentum)) return;
    setTensorField(o, "m", tf.keep(tf.scalar(momentum)));
    previous?.dispose();
  },
};

const adamBetas: HyperField = {
  torch: "betas",
  get: (o) => [numberField(o, "beta1"), numberField(o, "beta2")],
  set: (o, v) => {
    if (!Array.isArray(v) || v.length !== 2) {
      throw new LoadError("OPTIMIZER_BAD_STATE", "betas is not a pair of numbers", {
        key: "betas",
      });
    }
    setNumberField(o, "beta1", numeric("betas", v[0]!));
    setNumberField(o, "beta2", numeric("betas", v[1]!));
  },
};

/** tfjs's Adagrad adds the backend's epsilon, which cannot be set. */
const backendEpsilon: HyperField = { torch: "eps", get: () => tf.backend().epsilon() };

const KINDS: readonly OptimizerKind[] = [
  {
    type: "adam",
    className: "Adam",
    slots: [
      { torch: "exp_avg", field: "accumulatedFirstMoment" },
      { torch: "exp_avg_sq", field: "accumulatedSecondMoment" },
    ],
    hyper: [numberHyper("lr", "learningRate"), adamBetas, numberHyper("eps", "epsilon")],
    absent: { weight_decay: 0, amsgrad: false, maximize: false },
  },
  {
    type: "sgd",
    className: "SGD",
    slots: [],
    hyper: [sgdLearningRate],
    absent: { momentum: 0, dampening: 0, weight_decay: 0, nesterov: false, maximize: false },
  },
  {
    type: "momentum",
    className: "Momentum",
    slots: [{ torch: "momentum_buffer", field: "accumulations" }],
    hyper: [sgdLearningRate, momentumValue, booleanHyper("nesterov", "useNesterov")],
    absent: { dampening: 0, weight_decay: 0, maximize: false },
  },
  {
    type: "rmsprop",
    className: "RMSProp",
    slots: [
      { torch: "square_avg", field: "accumulatedMeanSquares" },
      { torch: "scaled_momentum_buffer", field: "accumulatedMoments" },
      { torch: "grad_avg", field: "accumulatedMeanGrads" },
    ],
    foreignSlots: { momentum_buffer: { field: "accumulatedMoments", timesLr: true } },
    hyper: [
      numberHyper("lr", "learningRate"),
      numberHyper("alpha", "decay"),
      numberHyper("momentum", "momentum"),
      numberHyper("eps", "epsilon"),
      booleanHyper("centered", "centered"),
    ],
    absent: { weight_decay: 0, maximize: false },
  },
  {
    type: "adagrad",
    className: "Adagrad",
    slots: [{ torch: "sum", field: "accumulatedGrads" }],
    hyper: [
      numberHyper("lr", "learningRate"),
      numberHyper("initial_accumulator_value", "initialAccumulatorValue"),
      backendEpsilon,
    ],
    absent: { lr_decay: 0, weight_decay: 0, maximize: false },
  },
];

/** The kind of a tfjs optimizer, or a LoadError naming the supported ones. */
export function optimizerKind(optimizer: Optimizer): OptimizerKind {
  const className = optimizer.getClassName();
  const kind = KINDS.find((k) => k.className === className);
  if (!kind) {
    throw new LoadError(
      "UNSUPPORTED_OPTIMIZER",
      `loadout does not restore tfjs ${className} optimizers`,
      { hint: `Supported: ${KINDS.map((k) => k.type).join(", ")} (tf.train.adam, ...).` },
    );
  }
  return kind;
}

/** The optimizer's hyperparameters under PyTorch's names. */
export function readHyper(kind: OptimizerKind, optimizer: Optimizer): Hyperparameters {
  const hyper: Hyperparameters = {};
  for (const field of kind.hyper) hyper[field.torch] = field.get(optimizer);
  return hyper;
}
