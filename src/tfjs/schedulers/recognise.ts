import { isPlainObject } from "../../state/plain-value.js";
import { describe, failState, fieldKey } from "./fields.js";
import type { SchedulerType } from "./types.js";

/**
 * Which scheduler a PyTorch `state_dict()` belongs to. torch saves no class name, only the
 * instance's attributes, so the rule is:
 *
 * 1. Set aside the fields every LRScheduler has (COMMON_FIELDS, including `verbose` from
 *    PyTorch 1.x-2.6).
 * 2. The remaining field names must be exactly one type's OWN_FIELDS, as a set: `gamma` alone
 *    is ExponentialLR, `step_size` + `gamma` StepLR, `milestones` + `gamma` MultiStepLR,
 *    `T_max` + `eta_min` CosineAnnealingLR, `start_factor` + `end_factor` + `total_iters`
 *    LinearLR, `_milestones` + `_schedulers` SequentialLR.
 *
 * No two types have the same set, so a state matches at most one; if the table ever allowed two,
 * the state is refused as ambiguous rather than guessed. A state that matches none is refused,
 * naming the torch scheduler it comes from when that is one loadout does not implement.
 */

export const COMMON_FIELDS: ReadonlySet<string> = new Set([
  "base_lrs",
  "last_epoch",
  "_step_count",
  "_is_initial",
  "_get_lr_called_within_step",
  "_last_lr",
  "verbose",
]);

/** Each type's own fields, in the order torch's state_dict() lists them. */
export const OWN_FIELDS: Readonly<Record<SchedulerType, readonly string[]>> = {
  StepLR: ["step_size", "gamma"],
  MultiStepLR: ["milestones", "gamma"],
  ExponentialLR: ["gamma"],
  CosineAnnealingLR: ["T_max", "eta_min"],
  LinearLR: ["start_factor", "end_factor", "total_iters"],
  SequentialLR: ["_milestones", "_schedulers"],
};

/** torch schedulers loadout does not implement, by a field only they have (first match wins). */
const UNSUPPORTED: readonly { field: string; name: string }[] = [
  { field: "patience", name: "ReduceLROnPlateau" },
  { field: "lr_lambdas", name: "LambdaLR or MultiplicativeLR" },
  { field: "power", name: "PolynomialLR" },
  { field: "factor", name: "ConstantLR" },
  { field: "T_0", name: "CosineAnnealingWarmRestarts" },
  { field: "max_lrs", name: "CyclicLR" },
  { field: "total_steps", name: "OneCycleLR" },
  { field: "_schedulers", name: "ChainedScheduler" },
];

const TYPES = Object.keys(OWN_FIELDS) as SchedulerType[];

export function recogniseSchedulerType(state: unknown, path = ""): SchedulerType {
  const at = path === "" ? "scheduler state" : path;
  if (!isPlainObject(state)) {
    failState("BAD_SCHEDULER_STATE", `${at} is ${describe(state)}, not a dict`, path);
  }
  const own = Object.keys(state).filter((name) => !COMMON_FIELDS.has(name));
  const matches = TYPES.filter((type) => sameSet(OWN_FIELDS[type], own));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    failState(
      "AMBIGUOUS_SCHEDULER_STATE",
      `${at} fits ${matches.join(" and ")} alike`,
      path,
      "Load it into a scheduler of the right type with loadStateDict.",
    );
  }
  const unsupported = UNSUPPORTED.find(({ field }) => own.includes(field));
  if (unsupported) {
    failState(
      "UNSUPPORTED_SCHEDULER",
      `${at} is a torch ${unsupported.name}'s, which loadout's schedulers do not implement`,
      path,
      "Supported: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, SequentialLR.",
    );
  }
  return refuseNearMiss(own, path, at);
}

function sameSet(expected: readonly string[], actual: readonly string[]): boolean {
  return expected.length === actual.length && expected.every((name) => actual.includes(name));
}

/** Names the extra or missing field when the state is one type's but for that field. */
function refuseNearMiss(own: readonly string[], path: string, at: string): never {
  const fieldList = own.length === 0 ? "none" : own.join(", ");
  const within = TYPES.filter((type) => OWN_FIELDS[type].every((name) => own.includes(name)));
  const largest = within.sort((a, b) => OWN_FIELDS[b].length - OWN_FIELDS[a].length)[0];
  if (largest !== undefined) {
    const extra = own.find((name) => !OWN_FIELDS[largest].includes(name))!;
    failState(
      "UNKNOWN_SCHEDULER_FIELD",
      `${at} has field '${extra}', not one of ${largest}'s (${OWN_FIELDS[largest].join(", ")})`,
      fieldKey(path, extra),
    );
  }
  const around = TYPES.filter((type) => own.every((name) => OWN_FIELDS[type].includes(name)));
  if (own.length > 0 && around.length === 1) {
    const type = around[0]!;
    const missing = OWN_FIELDS[type].find((name) => !own.includes(name))!;
    failState(
      "MISSING_SCHEDULER_FIELD",
      `${at} looks like ${type}'s but has no '${missing}'`,
      fieldKey(path, missing),
    );
  }
  return failState(
    "UNRECOGNISED_SCHEDULER_STATE",
    `${at} is no scheduler state loadout knows (its own fields: ${fieldList})`,
    path,
    "States come from torch.optim.lr_scheduler's state_dict(); see OWN_FIELDS for the types read.",
  );
}
