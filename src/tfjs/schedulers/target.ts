import { once } from "../../targets/transactions.js";
import type { SchedulerState, SchedulerTarget, Undo } from "../../targets/types.js";
import type { LrScheduler } from "./types.js";

/**
 * A scheduler as the load pipeline's SchedulerTarget: getState is stateDict(); setState loads a
 * PyTorch state (checked field by field first, a LoadError naming the field; nothing changes on
 * failure); reset goes back to the scheduler as constructed. Each change returns an Undo that
 * restores exactly the previous state, group rates included.
 */
export function schedulerTarget(scheduler: LrScheduler): SchedulerTarget {
  return {
    type: scheduler.type,
    getState: () => scheduler.stateDict(),
    async setState(state: SchedulerState): Promise<Undo> {
      const restore = scheduler.snapshot();
      scheduler.loadStateDict(state);
      return once(restore);
    },
    async reset(): Promise<Undo> {
      const restore = scheduler.snapshot();
      scheduler.reset();
      return once(restore);
    },
  };
}
