import { isPlainObject, type PlainObject, setOwn } from "../../state/plain-value.js";
import { type ChainableRule, createChainableScheduler } from "./chainable.js";
import { correctlyRoundedPowInt } from "./exact-math/pow.js";
import { describe, type Fail, failOption, finiteNumber, wholeNumber } from "./fields.js";
import type { ChainableLrScheduler, LrGroups } from "./types.js";

/**
 * torch.optim.lr_scheduler.MultiStepLR: the rate times gamma at each milestone (gamma^n at a
 * milestone listed n times).
 *
 * torch keeps `milestones` as a `collections.Counter` {epoch: times listed}, and state_dict()
 * saves that Counter. Read from a checkpoint it is a dict whose int keys become decimal text
 * (`{"2": 1, "4": 1}`, see pyToPlain), and that is what stateDict() gives here too; loading also
 * takes a Map<number, number>. Object keys that are whole numbers list in ascending order, not
 * the Counter's insertion order; Python's dict equality ignores order too.
 */

export interface MultiStepLrHyper {
  /** Milestone epoch -> how many times it was listed. */
  milestones: ReadonlyMap<number, number>;
  gamma: number;
}

export const multiStepLrRule: ChainableRule<MultiStepLrHyper> = {
  type: "MultiStepLR",
  readHyper: (read, key, fail) => ({
    milestones: readCounter(read("milestones"), key("milestones"), fail),
    gamma: finiteNumber(read("gamma"), key("gamma"), fail),
  }),
  writeHyper({ milestones, gamma }) {
    const counter: PlainObject = {};
    for (const [epoch, count] of milestones) setOwn(counter, String(epoch), count);
    return { milestones: counter, gamma };
  },
  getLr({ hyper, state, lr }) {
    const count = hyper.milestones.get(state.last_epoch);
    if (count === undefined) return [...lr];
    const decay = correctlyRoundedPowInt(hyper.gamma, count);
    return lr.map((rate) => rate * decay);
  },
  closedFormLr({ hyper, state }) {
    // bisect_right(sorted(milestones.elements()), last_epoch): milestones listed up to now.
    let passed = 0;
    for (const [epoch, count] of hyper.milestones) if (epoch <= state.last_epoch) passed += count;
    const decay = correctlyRoundedPowInt(hyper.gamma, passed);
    return state.base_lrs.map((base) => base * decay);
  },
};

const INTEGER_TEXT = /^-?(0|[1-9][0-9]*)$/;

/** A Counter of milestones: epoch keys (decimal text or numbers) to counts >= 1. */
function readCounter(value: unknown, key: string, fail: Fail): Map<number, number> {
  let entries: [unknown, unknown][];
  if (value instanceof Map) entries = [...value];
  else if (isPlainObject(value)) entries = Object.entries(value);
  else {
    return fail(
      "BAD_SCHEDULER_FIELD",
      `${key} is ${describe(value)}, not a Counter of milestones`,
      key,
      "torch saves MultiStepLR's milestones as a dict {epoch: count}.",
    );
  }
  const counter = new Map<number, number>();
  let total = 0;
  for (const [rawEpoch, rawCount] of entries) {
    const epoch =
      typeof rawEpoch === "string" && INTEGER_TEXT.test(rawEpoch) ? Number(rawEpoch) : rawEpoch;
    const at = `${key}[${String(rawEpoch)}]`;
    if (typeof epoch !== "number" || !Number.isSafeInteger(epoch)) {
      fail("BAD_SCHEDULER_FIELD", `${key} has key ${describe(rawEpoch)}, not an epoch`, at);
    }
    if (counter.has(epoch)) fail("BAD_SCHEDULER_FIELD", `${key} lists epoch ${epoch} twice`, at);
    const count = wholeNumber(rawCount, at, 1, fail);
    total += count;
    if (!Number.isSafeInteger(total)) {
      fail("BAD_SCHEDULER_FIELD", `${key} counts more milestones than 2^53`, at);
    }
    counter.set(epoch, count);
  }
  return counter;
}

export interface MultiStepLrOptions {
  /** Epochs at which the rate decays; an epoch listed n times decays by gamma^n. */
  milestones: readonly number[];
  /** Default 0.1. */
  gamma?: number;
}

export function createMultiStepLR(
  groupsOrBaseLrs: LrGroups | readonly number[],
  options: MultiStepLrOptions,
): ChainableLrScheduler {
  if (!Array.isArray(options.milestones)) {
    failOption("BAD_SCHEDULER_OPTION", "milestones is not a list of epochs", "milestones");
  }
  // Counter(milestones): counts in order of first appearance.
  const counter = new Map<number, number>();
  options.milestones.forEach((epoch, i) => {
    wholeNumber(epoch, `milestones[${i}]`, Number.MIN_SAFE_INTEGER, failOption);
    counter.set(epoch, (counter.get(epoch) ?? 0) + 1);
  });
  const given: Record<string, unknown> = { milestones: counter, gamma: options.gamma ?? 0.1 };
  const hyper = multiStepLrRule.readHyper(
    (f) => given[f],
    (f) => f,
    failOption,
  );
  return createChainableScheduler(multiStepLrRule, groupsOrBaseLrs, hyper);
}
