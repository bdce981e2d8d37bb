import type { PlainObject } from "../../state/plain-value.js";
import type { SchedulerState } from "../../targets/types.js";
import {
  booleanField,
  type Fail,
  failOption,
  failState,
  fieldKey,
  numberList,
  ownField,
  wholeNumber,
} from "./fields.js";
import { assignRates, toLrGroups } from "./lr-groups.js";
import { recogniseSchedulerType } from "./recognise.js";
import type { ChainableLrScheduler, ChainableSchedulerType, LrGroups } from "./types.js";

/**
 * torch's LRScheduler base class: the constructor's initial step, `step()` -> `_update_lr()` ->
 * `get_lr()`, `_step_count`, `_is_initial`, `_get_lr_called_within_step`, `_last_lr`, and
 * state_dict()/load_state_dict() over those fields plus the type's own. Each scheduler type is a
 * ChainableRule: its fields and its get_lr / _get_closed_form_lr.
 */

/** The fields every LRScheduler keeps, by torch's names. */
export interface StepState {
  base_lrs: number[];
  last_epoch: number;
  _step_count: number;
  _is_initial: boolean;
  _get_lr_called_within_step: boolean;
  _last_lr: number[];
  /** Saved by PyTorch 1.x-2.6; kept and written back when a loaded state had it. */
  verbose: boolean | undefined;
}

export interface LrContext<H> {
  readonly hyper: Readonly<H>;
  readonly state: Readonly<StepState>;
  /** The groups' current rates (`group["lr"]`), read by the chainable forms. */
  readonly lr: readonly number[];
}

export interface ChainableRule<H> {
  readonly type: ChainableSchedulerType;
  /**
   * Reads and checks the type's own fields. `read` gives a field's value by torch's name, `key`
   * the name to report (a state path, or the option's name).
   */
  readHyper(read: (field: string) => unknown, key: (field: string) => string, fail: Fail): H;
  /** The own fields as state_dict() has them, in torch's order. */
  writeHyper(hyper: Readonly<H>): PlainObject;
  /** `get_lr()`: the next rates, after `last_epoch` moved on by one. */
  getLr(context: LrContext<H>): number[];
  /** `_get_closed_form_lr()`: the rates at `last_epoch` from `base_lrs` alone. */
  closedFormLr(context: LrContext<H>): number[];
}

/**
 * A scheduler of `rule`'s type with checked hyperparameters (never changed in place: loading
 * replaces them), constructed as torch does: `initial_lr` taken as base_lrs, one initial step.
 */
export function createChainableScheduler<H>(
  rule: ChainableRule<H>,
  groupsOrBaseLrs: LrGroups | readonly number[],
  hyper: H,
): ChainableLrScheduler {
  const groups = toLrGroups(groupsOrBaseLrs);
  let current: { hyper: H; state: StepState } = {
    hyper,
    state: {
      base_lrs: [...groups.initialLr],
      last_epoch: -1,
      _step_count: 0,
      _is_initial: false,
      _get_lr_called_within_step: false,
      _last_lr: [],
      verbose: undefined,
    },
  };

  const context = (): LrContext<H> => ({
    hyper: current.hyper,
    state: current.state,
    lr: groups.lr,
  });

  function updateLr(epoch: number | undefined): void {
    const state = current.state;
    state._get_lr_called_within_step = true;
    let values: number[];
    try {
      if (epoch === undefined) {
        state.last_epoch += 1;
        values = rule.getLr(context());
      } else {
        state.last_epoch = epoch;
        values = rule.closedFormLr(context());
      }
    } finally {
      state._get_lr_called_within_step = false;
    }
    assignRates(groups.lr, values);
    state._last_lr = [...groups.lr];
  }

  function step(): void {
    current.state._step_count += 1;
    updateLr(undefined);
  }

  function initialStep(): void {
    current.state._step_count = 0;
    current.state._is_initial = true;
    try {
      step();
    } finally {
      current.state._is_initial = false;
    }
  }

  function snapshot(): () => void {
    const saved = copyCurrent(current);
    const lr = [...groups.lr];
    const initialLr = [...groups.initialLr];
    return () => {
      current = copyCurrent(saved);
      assignRates(groups.lr, lr);
      assignRates(groups.initialLr, initialLr);
    };
  }

  function stateDict(): SchedulerState {
    const state = current.state;
    const dict: PlainObject = {
      ...rule.writeHyper(current.hyper),
      base_lrs: [...state.base_lrs],
      last_epoch: state.last_epoch,
      _step_count: state._step_count,
      _is_initial: state._is_initial,
      _get_lr_called_within_step: state._get_lr_called_within_step,
      _last_lr: [...state._last_lr],
    };
    if (state.verbose !== undefined) dict.verbose = state.verbose;
    return dict;
  }

  function prepareLoad(state: unknown, path = ""): () => void {
    const type = recogniseSchedulerType(state, path);
    if (type !== rule.type) {
      failState(
        "SCHEDULER_TYPE_MISMATCH",
        `${path === "" ? "the state" : path} is a ${type}'s; this scheduler is a ${rule.type}`,
        path,
        "Build the scheduler from the state with schedulerFromState, or reset it instead.",
      );
    }
    const record = state as Record<string, unknown>;
    const key = (field: string) => fieldKey(path, field);
    const required = (field: string): unknown => {
      if (!Object.hasOwn(record, field)) {
        failState("MISSING_SCHEDULER_FIELD", `${key(field)} is missing`, key(field));
      }
      return record[field];
    };
    // Absent from states of older PyTorch: torch's load_state_dict keeps the current value.
    const optionalFlag = (field: string): boolean | undefined =>
      Object.hasOwn(record, field) ? booleanField(record[field], key(field), failState) : undefined;

    const nextHyper = rule.readHyper((field) => ownField(record, field), key, failState);
    const count = groups.lr.length;
    const baseLrs = numberList(required("base_lrs"), key("base_lrs"), count, failState);
    const lastEpoch = wholeNumber(required("last_epoch"), key("last_epoch"), -1, failState);
    const stepCount = wholeNumber(required("_step_count"), key("_step_count"), 0, failState);
    const lastLr = numberList(required("_last_lr"), key("_last_lr"), count, failState);
    const isInitial = optionalFlag("_is_initial");
    const withinStep = optionalFlag("_get_lr_called_within_step");
    const verbose = optionalFlag("verbose");
    return () => {
      const before = current.state;
      current = {
        hyper: nextHyper,
        state: {
          base_lrs: baseLrs,
          last_epoch: lastEpoch,
          _step_count: stepCount,
          _is_initial: isInitial ?? before._is_initial,
          _get_lr_called_within_step: withinStep ?? before._get_lr_called_within_step,
          _last_lr: lastLr,
          verbose: verbose ?? before.verbose,
        },
      };
      assignRates(groups.lr, lastLr);
      assignRates(groups.initialLr, baseLrs);
    };
  }

  initialStep();
  const fresh = snapshot();

  return {
    type: rule.type,
    groups,
    step,
    getLastLr: () => [...current.state._last_lr],
    stateDict,
    loadStateDict: (state) => prepareLoad(state)(),
    reset: () => fresh(),
    snapshot,
    initialStep,
    jumpTo(epoch: number) {
      updateLr(wholeNumber(epoch, "epoch", 0, failOption));
    },
    rewindEpoch() {
      current.state.last_epoch -= 1;
    },
    prepareLoad,
  };
}

function copyCurrent<H>(current: { hyper: H; state: StepState }): { hyper: H; state: StepState } {
  const { state } = current;
  return {
    hyper: current.hyper,
    state: { ...state, base_lrs: [...state.base_lrs], _last_lr: [...state._last_lr] },
  };
}
