import type { PlainObject } from "../../state/plain-value.js";
import type { SchedulerState } from "../../targets/types.js";
import {
  booleanField,
  describe,
  failOption,
  failState,
  numberList,
  wholeNumber,
  wholeNumberList,
} from "./fields.js";
import { assignRates } from "./lr-groups.js";
import { bisectRight } from "./python-ops.js";
import { recogniseSchedulerType } from "./recognise.js";
import type { ChainableLrScheduler, LrScheduler } from "./types.js";

/**
 * torch.optim.lr_scheduler.SequentialLR: schedulers taking turns at the milestones, with torch's
 * quirks. The constructor sets the rates back to `initial_lr`, moves every scheduler's
 * `last_epoch` back by one (undoing their constructors' steps) and repeats the initial step of
 * the scheduler active at epoch 0 only; at a milestone the next scheduler starts with
 * `_update_lr(0)` (closed form at epoch 0, `_step_count` unchanged). SequentialLR has no
 * base_lrs, `_step_count` or flags of its own: its state is `_milestones`, `last_epoch`,
 * `_last_lr` and `_schedulers` (the inner states).
 *
 * Inner SequentialLRs are refused: torch's own fails at the milestone where one takes over
 * (SequentialLR has no get_lr).
 */

interface SequentialState {
  _milestones: number[];
  last_epoch: number;
  _last_lr: number[];
  verbose: boolean | undefined;
}

export function createSequentialLR(
  schedulers: readonly LrScheduler[],
  milestones: readonly number[],
): LrScheduler {
  if (!Array.isArray(schedulers) || schedulers.length === 0) {
    failOption("BAD_SCHEDULER_OPTION", "SequentialLR needs at least one scheduler", "schedulers");
  }
  const inner = schedulers.map((scheduler, i) => asChainable(scheduler, i));
  const groups = inner[0]!.groups;
  inner.forEach((scheduler, i) => {
    if (scheduler.groups !== groups) {
      failOption(
        "BAD_SCHEDULER_OPTION",
        `schedulers[${i}] drives other param groups than schedulers[0]`,
        `schedulers[${i}]`,
        "Build every scheduler of a SequentialLR on the same LrGroups (torch: the same optimizer).",
      );
    }
  });
  const ownMilestones = wholeNumberList(
    milestones,
    "milestones",
    Number.MIN_SAFE_INTEGER,
    failOption,
  );
  if (ownMilestones.length !== inner.length - 1) {
    failOption(
      "BAD_SCHEDULER_OPTION",
      `${inner.length} schedulers need ${inner.length - 1} milestones, not ${ownMilestones.length}`,
      "milestones",
    );
  }

  let current: SequentialState = {
    _milestones: ownMilestones,
    last_epoch: 0, // torch: last_epoch + 1 with the default -1
    _last_lr: [],
    verbose: undefined,
  };
  assignRates(groups.lr, groups.initialLr);
  for (const scheduler of inner) scheduler.rewindEpoch();
  const first = inner[bisectRight(current._milestones, 0)]!;
  first.initialStep();
  current._last_lr = first.getLastLr();

  function step(): void {
    current.last_epoch += 1;
    const index = bisectRight(current._milestones, current.last_epoch);
    const scheduler = inner[index]!;
    if (index > 0 && current._milestones[index - 1] === current.last_epoch) scheduler.jumpTo(0);
    else scheduler.step();
    current._last_lr = scheduler.getLastLr();
  }

  function stateDict(): SchedulerState {
    const dict: PlainObject = {
      _milestones: [...current._milestones],
      last_epoch: current.last_epoch,
      _last_lr: [...current._last_lr],
    };
    if (current.verbose !== undefined) dict.verbose = current.verbose;
    dict._schedulers = inner.map((scheduler) => scheduler.stateDict() as PlainObject);
    return dict;
  }

  function loadStateDict(state: SchedulerState): void {
    const type = recogniseSchedulerType(state, "");
    if (type !== "SequentialLR") {
      failState(
        "SCHEDULER_TYPE_MISMATCH",
        `the state is a ${type}'s; this scheduler is a SequentialLR`,
        "",
        "Build the scheduler from the state with schedulerFromState, or reset it instead.",
      );
    }
    for (const field of Object.keys(state)) {
      if (!SEQUENTIAL_FIELDS.has(field)) {
        failState(
          "UNKNOWN_SCHEDULER_FIELD",
          `field '${field}' is not part of a SequentialLR state`,
          field,
          "SequentialLR keeps _milestones, last_epoch, _last_lr and _schedulers only.",
        );
      }
    }
    const required = (field: string): unknown => {
      if (!Object.hasOwn(state, field)) {
        failState("MISSING_SCHEDULER_FIELD", `${field} is missing`, field);
      }
      return state[field];
    };
    const milestonesNow = wholeNumberList(
      required("_milestones"),
      "_milestones",
      Number.MIN_SAFE_INTEGER,
      failState,
    );
    if (milestonesNow.length !== inner.length - 1) {
      failState(
        "BAD_SCHEDULER_FIELD",
        `_milestones has ${milestonesNow.length} milestones; ${inner.length} schedulers need ${inner.length - 1}`,
        "_milestones",
      );
    }
    const lastEpoch = wholeNumber(required("last_epoch"), "last_epoch", 0, failState);
    const lastLr = numberList(required("_last_lr"), "_last_lr", groups.lr.length, failState);
    const verbose = Object.hasOwn(state, "verbose")
      ? booleanField(state.verbose, "verbose", failState)
      : undefined;
    const innerStates = required("_schedulers");
    if (!Array.isArray(innerStates) || innerStates.length !== inner.length) {
      failState(
        "BAD_SCHEDULER_FIELD",
        `_schedulers is ${describe(innerStates)}; this SequentialLR has ${inner.length} schedulers`,
        "_schedulers",
      );
    }
    const commits = inner.map((scheduler, i) =>
      scheduler.prepareLoad(innerStates[i], `_schedulers[${i}]`),
    );
    for (const commit of commits) commit();
    current = {
      _milestones: milestonesNow,
      last_epoch: lastEpoch,
      _last_lr: lastLr,
      verbose: verbose ?? current.verbose,
    };
    assignRates(groups.lr, lastLr);
  }

  function snapshot(): () => void {
    const saved = {
      ...current,
      _milestones: [...current._milestones],
      _last_lr: [...current._last_lr],
    };
    const restoreInner = inner.map((scheduler) => scheduler.snapshot());
    const lr = [...groups.lr];
    const initialLr = [...groups.initialLr];
    return () => {
      for (const restore of restoreInner) restore();
      current = { ...saved, _milestones: [...saved._milestones], _last_lr: [...saved._last_lr] };
      assignRates(groups.lr, lr);
      assignRates(groups.initialLr, initialLr);
    };
  }

  const fresh = snapshot();
  return {
    type: "SequentialLR",
    groups,
    step,
    getLastLr: () => [...current._last_lr],
    stateDict,
    loadStateDict,
    reset: () => fresh(),
    snapshot,
  };
}

const SEQUENTIAL_FIELDS: ReadonlySet<string> = new Set([
  "_milestones",
  "last_epoch",
  "_last_lr",
  "_schedulers",
  "verbose",
]);

function asChainable(scheduler: LrScheduler, index: number): ChainableLrScheduler {
  if (scheduler?.type === "SequentialLR") {
    failOption(
      "BAD_SCHEDULER_OPTION",
      `schedulers[${index}] is a SequentialLR; SequentialLRs do not nest`,
      `schedulers[${index}]`,
      "torch's SequentialLR fails when a nested one takes over: list the schedulers in one SequentialLR.",
    );
  }
  const chainable = scheduler as Partial<ChainableLrScheduler>;
  if (
    typeof chainable.prepareLoad !== "function" ||
    typeof chainable.jumpTo !== "function" ||
    typeof chainable.rewindEpoch !== "function" ||
    typeof chainable.initialStep !== "function"
  ) {
    failOption(
      "BAD_SCHEDULER_OPTION",
      `schedulers[${index}] is not one of loadout's schedulers`,
      `schedulers[${index}]`,
    );
  }
  return scheduler as ChainableLrScheduler;
}
