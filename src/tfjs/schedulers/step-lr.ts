import { type ChainableRule, createChainableScheduler } from "./chainable.js";
import { correctlyRoundedPowInt } from "./exact-math/pow.js";
import { failOption, finiteNumber, wholeNumber } from "./fields.js";
import { floorDivide } from "./python-ops.js";
import type { ChainableLrScheduler, LrGroups } from "./types.js";

/** torch.optim.lr_scheduler.StepLR: the rate times gamma every step_size epochs. */

export interface StepLrHyper {
  step_size: number;
  gamma: number;
}

export const stepLrRule: ChainableRule<StepLrHyper> = {
  type: "StepLR",
  readHyper: (read, key, fail) => ({
    step_size: wholeNumber(read("step_size"), key("step_size"), 1, fail),
    gamma: finiteNumber(read("gamma"), key("gamma"), fail),
  }),
  writeHyper: ({ step_size, gamma }) => ({ step_size, gamma }),
  getLr({ hyper, state, lr }) {
    const epoch = state.last_epoch;
    // Python's `%` and JavaScript's differ in sign only, never in being zero.
    if (epoch === 0 || epoch % hyper.step_size !== 0) return [...lr];
    return lr.map((rate) => rate * hyper.gamma);
  },
  closedFormLr({ hyper, state }) {
    const decay = correctlyRoundedPowInt(
      hyper.gamma,
      floorDivide(state.last_epoch, hyper.step_size),
    );
    return state.base_lrs.map((base) => base * decay);
  },
};

export interface StepLrOptions {
  stepSize: number;
  /** Default 0.1. */
  gamma?: number;
}

const OPTION_NAMES: Record<string, string> = { step_size: "stepSize", gamma: "gamma" };

export function createStepLR(
  groupsOrBaseLrs: LrGroups | readonly number[],
  options: StepLrOptions,
): ChainableLrScheduler {
  const given: Record<string, unknown> = {
    step_size: options.stepSize,
    gamma: options.gamma ?? 0.1,
  };
  const hyper = stepLrRule.readHyper(
    (f) => given[f],
    (f) => OPTION_NAMES[f]!,
    failOption,
  );
  return createChainableScheduler(stepLrRule, groupsOrBaseLrs, hyper);
}
