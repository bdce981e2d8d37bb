import { scalarOf } from "../checkpoint/training-counters.js";
import { describeValue, formatPath, type TreePath } from "../checkpoint/tree.js";
import { FormatError, LoadError } from "../errors.js";
import { isDict, type PyDict, type PyValue } from "../formats/pickle/values.js";
import type { Hyperparameters, OptimizerState, ParameterState } from "../targets/types.js";
import { canConvert } from "../tensors/convert.js";
import { type DType, isFloating, type TypedArray } from "../tensors/dtype.js";
import { Tensor } from "../tensors/tensor.js";
import { readLoadoutRecord } from "./loadout-record.js";
import { setOwn } from "./plain-value.js";

export {
  mapOptimizerToNames,
  type OptimizerMapping,
  type OptimizerMappingOptions,
} from "./optimizer-mapping.js";

/**
 * PyTorch's optimizer state as checkpoints store it (`optimizer.state_dict()`):
 *   {"state": {0: {"step": tensor(12.), "exp_avg": tensor, ...}, 1: ...},
 *    "param_groups": [{"params": [0, 1, ...], "param_names": [...]?, "lr": 0.001, ...}, ...]}
 * Parameters are known only by position; param_names (recorded by recent PyTorch when the
 * optimizer was built from named_parameters()) names them. Tensors stay unread until applied.
 */

export type HyperValue = Hyperparameters[string];

export interface ParsedGroup {
  /** The group's `params`: positions in the optimizer state. */
  indices: number[];
  /** The group's `param_names`, when recorded: source names, one per index. */
  paramNames?: string[];
  /** Everything else in the group. A one-element tensor (a tensor `lr`) is read when applied. */
  hyper: Record<string, HyperValue | Tensor>;
}

export interface ParsedParameterState {
  /** `step` and other scalars: Python numbers, or 0-d tensors read when applied. */
  scalars: Record<string, number | Tensor>;
  /** Per-element state (`exp_avg`, `momentum_buffer`...), unread. */
  tensors: Map<string, Tensor>;
}

export interface ParsedOptimizerState {
  /** Where the state sits in the checkpoint tree. */
  path: TreePath;
  groups: ParsedGroup[];
  /** Per-parameter state by position; positions that never stepped have none. */
  state: Map<number, ParsedParameterState>;
}

export interface FoundOptimizerState {
  path: TreePath;
  value: PyValue;
  origin: "lightning" | "plain" | "loadout";
  /** With origin "loadout": the source names of the optimizer's positions. */
  paramOrder?: string[];
}

/** Keys under which plain training scripts save `optimizer.state_dict()`. */
const PLAIN_OPTIMIZER_KEYS = ["optimizer", "optimizer_state_dict"];

/**
 * Per-parameter state that has the parameter's shape, even when the parameter is 0-d. Every other
 * 0-d tensor in a parameter's state is a scalar (`step`, NAdam's `mu_product`, ASGD's `eta`, `mu`).
 */
const PER_ELEMENT_SLOTS = new Set([
  "exp_avg",
  "exp_avg_sq",
  "max_exp_avg_sq",
  "exp_inf",
  "momentum_buffer",
  "square_avg",
  "grad_avg",
  "acc_delta",
  "sum",
  "ax",
  "prev",
  "step_size",
]);

/**
 * Every optimizer state in a checkpoint tree: Lightning's `optimizer_states` list, a plain
 * `optimizer` / `optimizer_state_dict` dict (loadout's own layout when the tree has a loadout
 * record with `param_order`), or the root itself when the file is a bare optimizer state dict.
 */
export function findOptimizerStates(root: PyValue): FoundOptimizerState[] {
  const found: FoundOptimizerState[] = [];
  if (!isDict(root)) return found;
  const lightning = root.get("optimizer_states");
  if (Array.isArray(lightning)) {
    lightning.forEach((value, i) => {
      found.push({ path: ["optimizer_states", i], value, origin: "lightning" });
    });
  }
  const paramOrder = readLoadoutRecord(root)?.paramOrder;
  for (const key of PLAIN_OPTIMIZER_KEYS) {
    const value = root.get(key);
    if (!isDict(value)) continue;
    if (key === "optimizer" && paramOrder) {
      found.push({ path: [key], value, origin: "loadout", paramOrder });
    } else {
      found.push({ path: [key], value, origin: "plain" });
    }
  }
  if (root.has("state") && root.has("param_groups"))
    found.push({ path: [], value: root, origin: "plain" });
  return found;
}

function bad(path: TreePath, what: string): FormatError {
  return new FormatError("BAD_OPTIMIZER_STATE", what, {
    key: formatPath(path),
    hint: "This is not an optimizer state PyTorch writes; load with a strategy that resets the optimizer.",
  });
}

function isIndex(value: PyValue | undefined): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Reads a PyTorch optimizer state dict, checking every part's type; nothing is read from disk. */
export function parseTorchOptimizerState(dict: PyValue, path: TreePath): ParsedOptimizerState {
  if (!isDict(dict)) throw bad(path, `optimizer state is ${describeValue(dict)}, not a dict`);
  for (const key of dict.keys()) {
    if (key !== "state" && key !== "param_groups") {
      throw bad(path, `unexpected entry ${describeValue(key)} in an optimizer state`);
    }
  }
  const groupsValue = dict.get("param_groups");
  const groupsPath = [...path, "param_groups"];
  if (!Array.isArray(groupsValue)) {
    throw bad(
      groupsPath,
      `param_groups is ${groupsValue === undefined ? "missing" : describeValue(groupsValue)}, not a list`,
    );
  }
  const seen = new Set<number>();
  const groups = groupsValue.map((group, g) => parseGroup(group, [...groupsPath, g], seen));
  const stateValue = dict.get("state");
  const statePath = [...path, "state"];
  if (!isDict(stateValue)) {
    throw bad(
      statePath,
      `state is ${stateValue === undefined ? "missing" : describeValue(stateValue)}, not a dict`,
    );
  }
  const state = new Map<number, ParsedParameterState>();
  for (const [index, entry] of stateValue) {
    if (!isIndex(index))
      throw bad(statePath, `state key ${describeValue(index)} is not a parameter position`);
    if (!seen.has(index))
      throw bad([...statePath, index], `state for position ${index}, which no param group lists`);
    state.set(index, parseParameterState(entry, [...statePath, index]));
  }
  return { path, groups, state };
}

function parseGroup(group: PyValue, path: TreePath, seen: Set<number>): ParsedGroup {
  if (!isDict(group)) throw bad(path, `a param group is ${describeValue(group)}, not a dict`);
  const params = group.get("params");
  if (!Array.isArray(params) || !params.every(isIndex)) {
    throw bad([...path, "params"], "params is missing or not a list of parameter positions");
  }
  const indices = [...params];
  for (const index of indices) {
    if (seen.has(index)) throw bad([...path, "params"], `position ${index} is listed twice`);
    seen.add(index);
  }
  const parsed: ParsedGroup = { indices, hyper: {} };
  for (const [key, value] of group) {
    if (typeof key !== "string")
      throw bad(path, `param group key ${describeValue(key)} is not a string`);
    if (key === "params") continue;
    if (key === "param_names") {
      parsed.paramNames = parseParamNames(value, indices.length, [...path, key]);
      continue;
    }
    setOwn(parsed.hyper, key, parseHyper(value, [...path, key]));
  }
  return parsed;
}

function parseParamNames(value: PyValue, count: number, path: TreePath): string[] {
  if (!Array.isArray(value) || !value.every((name) => typeof name === "string")) {
    throw bad(path, "param_names is not a list of strings");
  }
  if (value.length !== count) {
    throw bad(path, `param_names has ${value.length} names for ${count} params`);
  }
  return [...(value as string[])];
}

function parseHyper(value: PyValue, path: TreePath): HyperValue | Tensor {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return value;
  if (Array.isArray(value) && value.every((item) => typeof item === "number"))
    return [...(value as number[])];
  if (value instanceof Tensor && value.numel === 1 && isNumeric(value.dtype)) return value;
  throw bad(
    path,
    `hyperparameter is ${describeValue(value)}; expected a number, bool, string, None or a tuple of numbers`,
  );
}

/** Whether a one-element tensor can be read as a plain number. */
function isNumeric(dtype: DType): boolean {
  return canConvert(dtype, "float64");
}

function parseParameterState(entry: PyValue, path: TreePath): ParsedParameterState {
  if (!isDict(entry)) throw bad(path, `a parameter's state is ${describeValue(entry)}, not a dict`);
  const parsed: ParsedParameterState = { scalars: {}, tensors: new Map() };
  for (const [slot, value] of entry as PyDict) {
    if (typeof slot !== "string")
      throw bad(path, `state key ${describeValue(slot)} is not a string`);
    const at = [...path, slot];
    // SGD without momentum stores momentum_buffer None: the same as no buffer.
    if (value === null) continue;
    if (typeof value === "number") setOwn(parsed.scalars, slot, value);
    else if (value instanceof Tensor) {
      const scalar = value.shape.length === 0 && !PER_ELEMENT_SLOTS.has(slot);
      if (scalar && !isNumeric(value.dtype))
        throw bad(at, `scalar ${slot} is ${describeValue(value)}`);
      if (scalar) setOwn(parsed.scalars, slot, value);
      else parsed.tensors.set(slot, value);
    } else {
      throw bad(at, `state entry is ${describeValue(value)}; expected a tensor or a number`);
    }
  }
  return parsed;
}

/** An optimizer state's structure at a glance (nothing is read). */
export interface OptimizerSummary {
  /** Guessed from the per-parameter slots: "Adam-like", "SGD", "RMSprop"... or null. */
  type: string | null;
  groups: number;
  /** Positions (parameters) the optimizer has. */
  parameters: number;
  /** Positions with per-parameter state. */
  withState: number;
  /** Every per-parameter entry name, in first-seen order. */
  slots: string[];
  /** Whether every group records param_names. */
  paramNames: boolean;
  /** Each group's hyperparameters (a tensor hyperparameter shown by its description). */
  hyper: Hyperparameters[];
}

/** The optimizer a set of slot names points to. Adam and AdamW store the same slots. */
export function guessOptimizerType(slots: ReadonlySet<string>): string | null {
  if (slots.has("exp_avg") && slots.has("exp_avg_sq")) return "Adam-like";
  if (slots.has("exp_avg") && slots.has("exp_inf")) return "Adamax";
  if (slots.has("momentum_buffer")) return "SGD";
  if (slots.has("square_avg") && slots.has("acc_delta")) return "Adadelta";
  if (slots.has("square_avg")) return "RMSprop";
  if (slots.has("sum")) return "Adagrad";
  return null;
}

/** What kind of optimizer wrote the state, from its slots: "Adam-like", "SGD"... or null. */
export function describeOptimizer(parsed: ParsedOptimizerState): string | null {
  return summarizeOptimizer(parsed).type;
}

export function summarizeOptimizer(parsed: ParsedOptimizerState): OptimizerSummary {
  const slots = new Set<string>();
  for (const entry of parsed.state.values()) {
    for (const slot of Object.keys(entry.scalars)) slots.add(slot);
    for (const slot of entry.tensors.keys()) slots.add(slot);
  }
  return {
    type: guessOptimizerType(slots),
    groups: parsed.groups.length,
    parameters: parsed.groups.reduce((n, g) => n + g.indices.length, 0),
    withState: parsed.state.size,
    slots: [...slots],
    paramNames: parsed.groups.length > 0 && parsed.groups.every((g) => g.paramNames !== undefined),
    hyper: parsed.groups.map((g) => {
      const hyper: Hyperparameters = {};
      for (const [k, v] of Object.entries(g.hyper))
        setOwn(hyper, k, v instanceof Tensor ? describeValue(v) : v);
      return hyper;
    }),
  };
}

export interface ToOptimizerStateOptions {
  /** Read floating-point state tensors as this dtype (default: as stored). */
  dtype?: DType;
}

/**
 * The optimizer state keyed by target parameter names, every tensor read: what an
 * OptimizerTarget's setState takes. `byIndex` (from mapOptimizerToNames) must name every position.
 */
export async function toOptimizerState(
  parsed: ParsedOptimizerState,
  byIndex: ReadonlyMap<number, string>,
  type?: string,
  options: ToOptimizerStateOptions = {},
): Promise<OptimizerState> {
  const nameOf = (index: number, path: TreePath): string => {
    const name = byIndex.get(index);
    if (name === undefined) {
      throw new LoadError(
        "OPTIMIZER_UNMAPPED",
        `optimizer position ${index} has no target parameter`,
        {
          key: formatPath(path),
          hint: "Map the optimizer with mapOptimizerToNames first.",
        },
      );
    }
    return name;
  };
  const groups = [];
  for (const [g, group] of parsed.groups.entries()) {
    const path = [...parsed.path, "param_groups", g];
    const hyper: Hyperparameters = {};
    for (const [key, value] of Object.entries(group.hyper)) {
      setOwn(hyper, key, value instanceof Tensor ? await readScalar(value, [...path, key]) : value);
    }
    groups.push({ params: group.indices.map((i) => nameOf(i, [...path, "params"])), hyper });
  }
  const state = new Map<string, ParameterState>();
  for (const [index, entry] of parsed.state) {
    const path = [...parsed.path, "state", index];
    const scalars: Record<string, number> = {};
    for (const [slot, value] of Object.entries(entry.scalars)) {
      const number = typeof value === "number" ? value : await readScalar(value, [...path, slot]);
      setOwn(scalars, slot, number);
    }
    const tensors = new Map<string, TypedArray>();
    for (const [slot, tensor] of entry.tensors) {
      const convert = options.dtype !== undefined && isFloating(tensor.dtype);
      tensors.set(slot, await tensor.read(convert ? { dtype: options.dtype! } : {}));
    }
    state.set(nameOf(index, path), { scalars, tensors });
  }
  return type === undefined ? { groups, state } : { type, groups, state };
}

async function readScalar(tensor: Tensor, path: TreePath): Promise<number> {
  const value = await scalarOf(tensor);
  if (value === undefined) throw bad(path, `${describeValue(tensor)} is not a scalar`);
  return value;
}
