import { WriteError } from "../../errors.js";
import type { Hyperparameters, OptimizerState } from "../../targets/types.js";
import type { TensorLike } from "../../tensors/tensor-like.js";
import { arrayTensor, dtypeOfArray } from "./array-tensor.js";
import { PyFloat, pyFloat, pyTuple, type WritableValue } from "./python-values.js";

/**
 * An OptimizerState (keyed by parameter name) in the layout `optimizer.state_dict()` has, so
 * torch's `optimizer.load_state_dict` and loadout's reader take it:
 *   {"state": {0: {"step": tensor(12.), "exp_avg": tensor, ...}, ...},
 *    "param_groups": [{"param_names": [...], <hyperparameters>, "params": [0, 1, ...]}, ...]}
 * Positions follow the groups' `params` in order (group 0's first). State tensors take their
 * parameter's shape. Numbers that torch.optim keeps as floats stay floats even when whole:
 *  - every per-parameter scalar (`step`, NAdam's `mu_product`...) is a 0-d float32 tensor, as
 *    torch >= 1.12 stores `step`;
 *  - every numeric hyperparameter is a float (tuples such as `betas` are tuples of floats),
 *    except LBFGS's counts (`max_iter`, `max_eval`, `history_size`), written as ints when whole.
 */

const INTEGER_HYPERPARAMETERS = new Set(["max_iter", "max_eval", "history_size"]);

export interface OptimizerStateDict {
  value: Map<string, WritableValue>;
  /** The state-dict key of each position, in order. */
  paramOrder: string[];
}

function invalid(what: string, key: string, hint?: string): WriteError {
  return new WriteError("INVALID_OPTIMIZER_STATE", what, { key, hint });
}

function hyperNumber(name: string, value: number): WritableValue {
  return INTEGER_HYPERPARAMETERS.has(name) && Number.isSafeInteger(value) ? value : pyFloat(value);
}

function hyperValue(
  name: string,
  value: Hyperparameters[string] | PyFloat,
  key: string,
): WritableValue {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (value instanceof PyFloat) return value;
  if (typeof value === "number") return hyperNumber(name, value);
  if (Array.isArray(value) && value.every((item) => typeof item === "number")) {
    return pyTuple(value.map((item: number) => hyperNumber(name, item)));
  }
  throw invalid(
    `hyperparameter ${name} is neither a number, bool, string, None nor a list of numbers`,
    key,
  );
}

/**
 * `state` in PyTorch's layout. `model` gives each parameter's shape and dtype; `prefix` is put
 * before every parameter name in `param_names` and `paramOrder` (the model's state-dict keys).
 */
export function optimizerStateDict(
  state: OptimizerState,
  model: ReadonlyMap<string, TensorLike>,
  prefix: string,
): OptimizerStateDict {
  const position = new Map<string, number>();
  const paramOrder: string[] = [];
  const groups: WritableValue[] = [];
  state.groups.forEach((group, g) => {
    const groupKey = `optimizer/param_groups/${g}`;
    const indices: number[] = [];
    for (const name of group.params) {
      if (!model.has(name)) {
        throw invalid(
          `optimizer parameter '${name}' is not in the model`,
          `${groupKey}/params`,
          "Every optimizer parameter must be a model tensor.",
        );
      }
      if (position.has(name)) {
        throw invalid(`optimizer parameter '${name}' is listed twice`, `${groupKey}/params`);
      }
      position.set(name, paramOrder.length);
      indices.push(paramOrder.length);
      paramOrder.push(`${prefix}${name}`);
    }
    const packed = new Map<string, WritableValue>();
    packed.set(
      "param_names",
      group.params.map((name) => `${prefix}${name}`),
    );
    for (const [name, value] of Object.entries(group.hyper)) {
      if (name === "params" || name === "param_names") {
        throw invalid(
          `hyperparameter named ${name}`,
          groupKey,
          "params and param_names come from the group's parameter list.",
        );
      }
      packed.set(name, hyperValue(name, value, `${groupKey}/${name}`));
    }
    packed.set("params", indices);
    groups.push(packed);
  });

  const perParameter = new Map<number, WritableValue>();
  for (const [name, entry] of state.state) {
    const index = position.get(name);
    const key = `optimizer/state/${name}`;
    if (index === undefined) throw invalid(`state for '${name}', which no param group lists`, key);
    const parameter = model.get(name)!;
    const slots = new Map<string, WritableValue>();
    for (const [slot, value] of Object.entries(entry.scalars)) {
      if (typeof value !== "number")
        throw invalid(`scalar ${slot} is not a number`, `${key}/${slot}`);
      slots.set(slot, arrayTensor("float32", [], Float32Array.of(value), `${key}/${slot}`));
    }
    for (const [slot, data] of entry.tensors) {
      const dtype = dtypeOfArray(data, parameter.dtype);
      if (dtype === undefined) {
        throw invalid(
          `state ${slot} is a ${data.constructor.name}, which could be several dtypes`,
          `${key}/${slot}`,
          "Give 16-bit float state for a parameter of the same dtype.",
        );
      }
      slots.set(slot, arrayTensor(dtype, parameter.shape, data, `${key}/${slot}`));
    }
    perParameter.set(index, slots);
  }
  const ordered = new Map([...perParameter].sort(([a], [b]) => a - b));
  return {
    value: new Map<string, WritableValue>([
      ["state", ordered],
      ["param_groups", groups],
    ]),
    paramOrder,
  };
}
