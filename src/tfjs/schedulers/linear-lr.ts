import { type ChainableRule, createChainableScheduler } from "./chainable.js";
import { type Fail, failOption, finiteNumber, wholeNumber } from "./fields.js";
import type { ChainableLrScheduler, LrGroups } from "./types.js";

/**
 * torch.optim.lr_scheduler.LinearLR: the rate's factor moves linearly from start_factor to
 * end_factor over total_iters epochs (chainable form: each step multiplies the current rate).
 */

export interface LinearLrHyper {
  start_factor: number;
  end_factor: number;
  total_iters: number;
}

/** torch's constructor checks, applied to loaded states too (start_factor 0 divides by zero). */
function factor(value: unknown, key: string, lowExclusive: boolean, fail: Fail): number {
  const n = finiteNumber(value, key, fail);
  if (n > 1 || n < 0 || (lowExclusive && n === 0)) {
    fail(
      "BAD_SCHEDULER_FIELD",
      `${key} is ${n}; it must be ${lowExclusive ? "greater than 0" : "at least 0"} and at most 1`,
      key,
    );
  }
  return n;
}

export const linearLrRule: ChainableRule<LinearLrHyper> = {
  type: "LinearLR",
  readHyper: (read, key, fail) => ({
    start_factor: factor(read("start_factor"), key("start_factor"), true, fail),
    end_factor: factor(read("end_factor"), key("end_factor"), false, fail),
    total_iters: wholeNumber(read("total_iters"), key("total_iters"), 1, fail),
  }),
  writeHyper: ({ start_factor, end_factor, total_iters }) => ({
    start_factor,
    end_factor,
    total_iters,
  }),
  getLr({ hyper, state, lr }) {
    const { start_factor: start, end_factor: end, total_iters: total } = hyper;
    const epoch = state.last_epoch;
    if (epoch === 0) return lr.map((rate) => rate * start);
    if (state._is_initial || epoch > total) return [...lr];
    const growth = 1.0 + (end - start) / (total * start + (epoch - 1) * (end - start));
    return lr.map((rate) => rate * growth);
  },
  closedFormLr({ hyper, state }) {
    const { start_factor: start, end_factor: end, total_iters: total } = hyper;
    const factorNow = start + ((end - start) * Math.min(total, state.last_epoch)) / total;
    return state.base_lrs.map((base) => base * factorNow);
  },
};

export interface LinearLrOptions {
  /** Default 1/3. */
  startFactor?: number;
  /** Default 1. */
  endFactor?: number;
  /** Default 5. */
  totalIters?: number;
}

const OPTION_NAMES: Record<string, string> = {
  start_factor: "startFactor",
  end_factor: "endFactor",
  total_iters: "totalIters",
};

export function createLinearLR(
  groupsOrBaseLrs: LrGroups | readonly number[],
  options: LinearLrOptions = {},
): ChainableLrScheduler {
  const given: Record<string, unknown> = {
    start_factor: options.startFactor ?? 1.0 / 3,
    end_factor: options.endFactor ?? 1.0,
    total_iters: options.totalIters ?? 5,
  };
  const hyper = linearLrRule.readHyper(
    (f) => given[f],
    (f) => OPTION_NAMES[f]!,
    failOption,
  );
  return createChainableScheduler(linearLrRule, groupsOrBaseLrs, hyper);
}
