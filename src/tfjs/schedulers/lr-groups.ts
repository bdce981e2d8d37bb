import { failOption, numberList } from "./fields.js";
import type { LrGroups } from "./types.js";

/**
 * Param groups starting at `baseLrs` (one rate per group), `initial_lr` set to the same, as a
 * fresh optimizer's groups are when their first scheduler is constructed. The arrays keep their
 * length (sealed); their values change as the schedulers step.
 */
export function createLrGroups(baseLrs: readonly number[]): LrGroups {
  const rates = numberList(baseLrs, "baseLrs", undefined, failOption);
  if (rates.length === 0) {
    failOption("BAD_SCHEDULER_OPTION", "baseLrs is empty", "baseLrs", "Give one rate per group.");
  }
  return Object.freeze({ lr: Object.seal([...rates]), initialLr: Object.seal([...rates]) });
}

/** The groups to drive: new ones for a list of base rates, or groups shared with other schedulers. */
export function toLrGroups(groupsOrBaseLrs: LrGroups | readonly number[]): LrGroups {
  if (Array.isArray(groupsOrBaseLrs)) return createLrGroups(groupsOrBaseLrs);
  const groups = groupsOrBaseLrs as LrGroups;
  if (typeof groups !== "object" || groups === null) {
    failOption("BAD_SCHEDULER_OPTION", "the groups are neither LrGroups nor base rates", "groups");
  }
  const count = Array.isArray(groups.lr) ? groups.lr.length : 0;
  numberList(groups.lr, "groups.lr", undefined, failOption);
  numberList(groups.initialLr, "groups.initialLr", count, failOption);
  if (count === 0) failOption("BAD_SCHEDULER_OPTION", "groups.lr is empty", "groups.lr");
  return groups;
}

/** Copies `values` into `target` element by element (the groups' arrays are shared). */
export function assignRates(target: number[], values: readonly number[]): void {
  for (let i = 0; i < target.length; i++) target[i] = values[i]!;
}
