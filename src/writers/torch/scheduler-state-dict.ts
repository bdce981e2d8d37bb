import type { SchedulerState } from "../../targets/types.js";
import { PyCounter, PyFloat, pyFloat, type WritableValue } from "./python-values.js";

/**
 * A SchedulerState (plain data in PyTorch's field names) as the dict `scheduler.state_dict()`
 * gives: objects become dicts, arrays lists (frozen arrays tuples). Numbers under the fields
 * torch.optim.lr_scheduler keeps as floats (`base_lrs`, `_last_lr`, `gamma`, `eta_min`, ...) are
 * written as floats even when whole, list items included; any other whole number is an int
 * (`last_epoch`, `_step_count`, `T_max`, `step_size`). Wrap a number in `pyFloat` to force a
 * float elsewhere. A MultiStepLR's `milestones` is written back as the `collections.Counter`
 * with integer keys torch keeps (the reader gives it as an object with decimal-text keys): with
 * a plain dict, torch would fail on every epoch that is not a milestone.
 */

/** `{"2": 1, "4": 1}` (or a Map) as a Counter with integer keys; anything else unchanged. */
function milestoneCounter(value: unknown): unknown {
  const entries =
    value instanceof Map
      ? [...value]
      : typeof value === "object" && value !== null && !Array.isArray(value)
        ? Object.entries(value)
        : undefined;
  if (!entries) return value;
  const counts = new Map<WritableValue, number>();
  for (const [key, count] of entries) {
    const epoch =
      typeof key === "number" ? key : /^-?\d+$/.test(String(key)) ? Number(key) : Number.NaN;
    if (!Number.isSafeInteger(epoch) || typeof count !== "number" || !Number.isSafeInteger(count))
      return value;
    counts.set(epoch, count);
  }
  return new PyCounter(counts);
}

const FLOAT_FIELDS = new Set([
  "base_lrs",
  "_last_lr",
  "gamma",
  "eta_min",
  "start_factor",
  "end_factor",
  "factor",
  "power",
  "min_lrs",
  "max_lrs",
  "eps",
  "threshold",
  "best",
  "mode_worse",
  "base_momentums",
  "max_momentums",
  "total_size",
  "step_ratio",
  "end_step",
  "initial_lr",
  "max_lr",
  "min_lr",
  "lr",
]);

interface Pending {
  value: unknown;
  /** Numbers here are floats: the nearest dict field above is a float field. */
  float: boolean;
  assign(converted: unknown): void;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The state as a writable dict. Walks iteratively; shared parts stay shared (and a cycle stays a
 * cycle, which the pickler then refuses with its path).
 */
export function schedulerStateDict(state: SchedulerState): Map<string, WritableValue> {
  const converted = new Map<object, unknown>();
  const finishers: (() => void)[] = [];
  let root: unknown;
  const stack: Pending[] = [{ value: state, float: false, assign: (v) => (root = v) }];
  while (stack.length > 0) {
    const { value, float, assign } = stack.pop()!;
    if (typeof value === "number") {
      assign(float ? pyFloat(value) : value);
      continue;
    }
    if (typeof value !== "object" || value === null || value instanceof PyFloat) {
      assign(value);
      continue;
    }
    const seen = converted.get(value);
    if (seen !== undefined) {
      assign(seen);
      continue;
    }
    if (Array.isArray(value)) {
      const items: unknown[] = new Array(value.length);
      converted.set(value, items);
      assign(items);
      // Tuples are frozen once their items are in.
      if (Object.isFrozen(value)) finishers.push(() => Object.freeze(items));
      value.forEach((item, i) => {
        stack.push({ value: item, float, assign: (v) => (items[i] = v) });
      });
      continue;
    }
    const entries =
      value instanceof Map ? [...value] : isPlainObject(value) ? Object.entries(value) : undefined;
    if (entries === undefined) {
      // Tensors, bytes, markers and anything the pickler will judge.
      assign(value);
      continue;
    }
    const dict = new Map<unknown, unknown>();
    converted.set(value, dict);
    assign(dict);
    for (const [key, item] of entries) {
      dict.set(key, undefined);
      if (key === "milestones") {
        dict.set(key, milestoneCounter(item));
        continue;
      }
      const isFloat = typeof key === "string" && FLOAT_FIELDS.has(key);
      stack.push({ value: item, float: isFloat, assign: (v) => dict.set(key, v) });
    }
  }
  for (const finish of finishers) finish();
  return root as Map<string, WritableValue>;
}
