import { type ChainableRule, createChainableScheduler } from "./chainable.js";
import { correctlyRoundedCos as cos } from "./exact-math/cos.js";
import { failOption, finiteNumber, wholeNumber } from "./fields.js";
import type { ChainableLrScheduler, LrGroups } from "./types.js";

/**
 * torch.optim.lr_scheduler.CosineAnnealingLR in torch's recursive (chainable) form, which is
 * what step() uses and differs from the closed form in the last bits. Every expression keeps
 * torch's operation order (`a + b * c / d` is `a + ((b * c) / d)`), and cos is correctly rounded
 * (see exact-math/cos.ts) where Math.cos is not.
 */

export interface CosineAnnealingLrHyper {
  T_max: number;
  eta_min: number;
}

export const cosineAnnealingLrRule: ChainableRule<CosineAnnealingLrHyper> = {
  type: "CosineAnnealingLR",
  readHyper: (read, key, fail) => ({
    T_max: wholeNumber(read("T_max"), key("T_max"), 1, fail),
    eta_min: finiteNumber(read("eta_min"), key("eta_min"), fail),
  }),
  writeHyper: ({ T_max, eta_min }) => ({ T_max, eta_min }),
  getLr({ hyper, state, lr }) {
    const { T_max: tMax, eta_min: etaMin } = hyper;
    const epoch = state.last_epoch;
    if (state._is_initial) return [...lr];
    if (state._step_count === 1 && epoch > 0) {
      // First step of a scheduler resumed at a later epoch: the closed form.
      return state.base_lrs.map(
        (base) => etaMin + ((base - etaMin) * (1 + cos((epoch * Math.PI) / tMax))) / 2,
      );
    }
    if ((epoch - 1 - tMax) % (2 * tMax) === 0) {
      // Leaving a trough, where the ratio below would divide by 1 + cos(pi) = 0.
      return lr.map(
        (rate, i) => rate + ((state.base_lrs[i]! - etaMin) * (1 - cos(Math.PI / tMax))) / 2,
      );
    }
    const ratio = (1 + cos((Math.PI * epoch) / tMax)) / (1 + cos((Math.PI * (epoch - 1)) / tMax));
    return lr.map((rate) => ratio * (rate - etaMin) + etaMin);
  },
  closedFormLr({ hyper, state }) {
    const { T_max: tMax, eta_min: etaMin } = hyper;
    const wave = 1 + cos((Math.PI * state.last_epoch) / tMax);
    return state.base_lrs.map((base) => etaMin + ((base - etaMin) * wave) / 2);
  },
};

export interface CosineAnnealingLrOptions {
  /** Epochs from the top of the cosine to its bottom. */
  tMax: number;
  /** Default 0. */
  etaMin?: number;
}

const OPTION_NAMES: Record<string, string> = { T_max: "tMax", eta_min: "etaMin" };

export function createCosineAnnealingLR(
  groupsOrBaseLrs: LrGroups | readonly number[],
  options: CosineAnnealingLrOptions,
): ChainableLrScheduler {
  const given: Record<string, unknown> = { T_max: options.tMax, eta_min: options.etaMin ?? 0 };
  const hyper = cosineAnnealingLrRule.readHyper(
    (f) => given[f],
    (f) => OPTION_NAMES[f]!,
    failOption,
  );
  return createChainableScheduler(cosineAnnealingLrRule, groupsOrBaseLrs, hyper);
}
