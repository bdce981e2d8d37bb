import type { SchedulerState } from "../../targets/types.js";

/**
 * Learning-rate schedulers with torch.optim.lr_scheduler's semantics (PyTorch 2.13), free of any
 * framework: they compute learning rates, and whoever drives the optimizer copies
 * `getLastLr()` into it after each `step()`.
 */

export type ChainableSchedulerType =
  | "StepLR"
  | "MultiStepLR"
  | "ExponentialLR"
  | "CosineAnnealingLR"
  | "LinearLR";

export type SchedulerType = ChainableSchedulerType | "SequentialLR";

/**
 * What the schedulers see of the optimizer: each param group's `lr` and `initial_lr` (PyTorch
 * keeps both in `optimizer.param_groups`). The chainable forms compute the next rate from the
 * current `lr`, so schedulers combined in a SequentialLR share one LrGroups, as torch's share one
 * optimizer. Code that changes an optimizer's rate outside the scheduler may write `lr` here,
 * as PyTorch users write `param_group["lr"]`.
 */
export interface LrGroups {
  /** Current rate per group (`param_group["lr"]`); the array keeps its length. */
  readonly lr: number[];
  /** `param_group["initial_lr"]`: what a scheduler constructed on these groups takes as base_lrs. */
  readonly initialLr: number[];
}

export interface LrScheduler {
  readonly type: SchedulerType;
  /** The learning rates this scheduler drives (shared with the other schedulers of a SequentialLR). */
  readonly groups: LrGroups;
  /** One scheduler step (call after the optimizer's step), as `scheduler.step()`. */
  step(): void;
  /** The rates the last step set, one per group (`get_last_lr()`); a copy. */
  getLastLr(): number[];
  /** `state_dict()`: PyTorch's field names and values, as plain data. */
  stateDict(): SchedulerState;
  /**
   * `load_state_dict(state)`, validated first (a LoadError names the field): all or nothing.
   * Also sets the groups' rates to the state's `_last_lr` and, for the chainable schedulers,
   * `initial_lr` to its `base_lrs`, which is what restoring the optimizer alongside does in torch.
   */
  loadStateDict(state: SchedulerState): void;
  /** Back to the state the constructor left (hyperparameters and group rates included). */
  reset(): void;
  /** Captures the whole current state (group rates included); the result restores it. */
  snapshot(): () => void;
}

/** A scheduler whose get_lr follows LRScheduler's step machinery (all but SequentialLR). */
export interface ChainableLrScheduler extends LrScheduler {
  readonly type: ChainableSchedulerType;
  /** `_initial_step()`: `_step_count` back to 0, then one step in initial mode. */
  initialStep(): void;
  /**
   * `_update_lr(epoch)`: set `last_epoch` and the rates from the closed form, without counting
   * a step; SequentialLR does this with 0 when a milestone hands over to this scheduler.
   */
  jumpTo(epoch: number): void;
  /** `last_epoch -= 1`: SequentialLR's constructor undoing the constructor's step. */
  rewindEpoch(): void;
  /**
   * Validates `state` (a LoadError names the field, under `path`) and returns what applies it;
   * lets SequentialLR check all its schedulers' states before changing any.
   */
  prepareLoad(state: unknown, path?: string): () => void;
}
