import type { SchedulerState } from "../../targets/types.js";
import { type ChainableRule, createChainableScheduler } from "./chainable.js";
import { cosineAnnealingLrRule } from "./cosine-annealing-lr.js";
import { exponentialLrRule } from "./exponential-lr.js";
import { describe, failState, fieldKey, numberList, ownField, wholeNumberList } from "./fields.js";
import { linearLrRule } from "./linear-lr.js";
import { createLrGroups } from "./lr-groups.js";
import { multiStepLrRule } from "./multi-step-lr.js";
import { recogniseSchedulerType } from "./recognise.js";
import { createSequentialLR } from "./sequential-lr.js";
import { stepLrRule } from "./step-lr.js";
import type {
  ChainableLrScheduler,
  ChainableSchedulerType,
  LrGroups,
  LrScheduler,
} from "./types.js";

/**
 * The scheduler a PyTorch state_dict() describes (its type recognised by the rule in
 * recognise.ts), built with the state's hyperparameters and base_lrs and then loaded with it, so
 * that stepping it continues the saved run. Anything wrong is a LoadError naming the field.
 */
export function schedulerFromState(state: SchedulerState): LrScheduler {
  const type = recogniseSchedulerType(state);
  const scheduler =
    type === "SequentialLR"
      ? sequentialFromState(state)
      : chainableFromState(type, state, "", undefined);
  scheduler.loadStateDict(state);
  return scheduler;
}

function chainableFromState(
  type: ChainableSchedulerType,
  state: SchedulerState,
  path: string,
  shared: LrGroups | undefined,
): ChainableLrScheduler {
  const groups = shared ?? groupsFromState(state, path);
  switch (type) {
    case "StepLR":
      return build(stepLrRule, state, path, groups);
    case "MultiStepLR":
      return build(multiStepLrRule, state, path, groups);
    case "ExponentialLR":
      return build(exponentialLrRule, state, path, groups);
    case "CosineAnnealingLR":
      return build(cosineAnnealingLrRule, state, path, groups);
    case "LinearLR":
      return build(linearLrRule, state, path, groups);
  }
}

function build<H>(
  rule: ChainableRule<H>,
  state: SchedulerState,
  path: string,
  groups: LrGroups,
): ChainableLrScheduler {
  const hyper = rule.readHyper(
    (field) => ownField(state, field),
    (field) => fieldKey(path, field),
    failState,
  );
  return createChainableScheduler(rule, groups, hyper);
}

/** Groups at the state's base_lrs (the optimizer's initial_lr). */
function groupsFromState(state: SchedulerState, path: string): LrGroups {
  const key = fieldKey(path, "base_lrs");
  const baseLrs = numberList(ownField(state, "base_lrs"), key, undefined, failState);
  if (baseLrs.length === 0) failState("BAD_SCHEDULER_FIELD", `${key} is empty`, key);
  return createLrGroups(baseLrs);
}

function sequentialFromState(state: SchedulerState): LrScheduler {
  const innerStates = ownField(state, "_schedulers");
  if (!Array.isArray(innerStates) || innerStates.length === 0) {
    failState(
      "BAD_SCHEDULER_FIELD",
      `_schedulers is ${describe(innerStates)}, not a list of scheduler states`,
      "_schedulers",
    );
  }
  const milestones = wholeNumberList(
    ownField(state, "_milestones"),
    "_milestones",
    Number.MIN_SAFE_INTEGER,
    failState,
  );
  if (milestones.length !== innerStates.length - 1) {
    failState(
      "BAD_SCHEDULER_FIELD",
      `_milestones has ${milestones.length} milestones for ${innerStates.length} schedulers`,
      "_milestones",
      "A SequentialLR has one milestone fewer than schedulers.",
    );
  }
  const types = innerStates.map((inner, i) => {
    const path = `_schedulers[${i}]`;
    const type = recogniseSchedulerType(inner, path);
    if (type === "SequentialLR") {
      failState(
        "UNSUPPORTED_SCHEDULER",
        `${path} is a SequentialLR inside a SequentialLR, which loadout does not build`,
        path,
      );
    }
    return type;
  });
  const groups = groupsFromState(innerStates[0] as SchedulerState, "_schedulers[0]");
  const inner = types.map((type, i) =>
    chainableFromState(type, innerStates[i] as SchedulerState, `_schedulers[${i}]`, groups),
  );
  return createSequentialLR(inner, milestones);
}
