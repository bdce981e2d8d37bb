import { type ChainableRule, createChainableScheduler } from "./chainable.js";
import { correctlyRoundedPowInt } from "./exact-math/pow.js";
import { failOption, finiteNumber } from "./fields.js";
import type { ChainableLrScheduler, LrGroups } from "./types.js";

/** torch.optim.lr_scheduler.ExponentialLR: the rate times gamma every epoch. */

export interface ExponentialLrHyper {
  gamma: number;
}

export const exponentialLrRule: ChainableRule<ExponentialLrHyper> = {
  type: "ExponentialLR",
  readHyper: (read, key, fail) => ({ gamma: finiteNumber(read("gamma"), key("gamma"), fail) }),
  writeHyper: ({ gamma }) => ({ gamma }),
  getLr({ hyper, state, lr }) {
    // The constructor's step must not decay a rate that may already be a resumed one.
    if (state._is_initial) return [...lr];
    return lr.map((rate) => rate * hyper.gamma);
  },
  closedFormLr({ hyper, state }) {
    const decay = correctlyRoundedPowInt(hyper.gamma, state.last_epoch);
    return state.base_lrs.map((base) => base * decay);
  },
};

export interface ExponentialLrOptions {
  gamma: number;
}

export function createExponentialLR(
  groupsOrBaseLrs: LrGroups | readonly number[],
  options: ExponentialLrOptions,
): ChainableLrScheduler {
  const hyper = exponentialLrRule.readHyper(
    () => options.gamma,
    (f) => f,
    failOption,
  );
  return createChainableScheduler(exponentialLrRule, groupsOrBaseLrs, hyper);
}
