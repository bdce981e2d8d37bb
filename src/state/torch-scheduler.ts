import { describeValue, formatPath, type TreePath } from "../checkpoint/tree.js";
import { FormatError } from "../errors.js";
import { isDict, type PyValue } from "../formats/pickle/values.js";
import type { SchedulerState } from "../targets/types.js";
import { pyToPlain } from "./plain-from-tree.js";
import { isPlainObject } from "./plain-value.js";

/**
 * Learning-rate scheduler state as checkpoints store it (`scheduler.state_dict()`: `last_epoch`,
 * `_step_count`, `base_lrs`, `_last_lr`... and, for SequentialLR, the inner schedulers' states).
 */

export interface FoundSchedulerState {
  path: TreePath;
  value: PyValue;
  origin: "lightning" | "plain";
}

/** Keys under which training scripts (and loadout's writer: `scheduler`) save a scheduler's state. */
const PLAIN_SCHEDULER_KEYS = ["scheduler", "lr_scheduler", "scheduler_state_dict"];

/** Lightning's `lr_schedulers` list, then the plain keys, wherever a dict is found. */
export function findSchedulerStates(root: PyValue): FoundSchedulerState[] {
  const found: FoundSchedulerState[] = [];
  if (!isDict(root)) return found;
  const lightning = root.get("lr_schedulers");
  if (Array.isArray(lightning)) {
    lightning.forEach((value, i) => {
      found.push({ path: ["lr_schedulers", i], value, origin: "lightning" });
    });
  }
  for (const key of PLAIN_SCHEDULER_KEYS) {
    const value = root.get(key);
    if (isDict(value)) found.push({ path: [key], value, origin: "plain" });
  }
  return found;
}

/**
 * A scheduler's state as plain data (see pyToPlain: dicts to objects with string keys, tuples
 * to arrays, 0-d tensors to numbers, bigints beyond 2^53 to strings, foreign objects to
 * `{"__class__": ...}`). The state must be a dict.
 */
export async function toSchedulerState(
  value: PyValue,
  path: TreePath = [],
): Promise<SchedulerState> {
  if (!isDict(value)) {
    throw new FormatError(
      "BAD_SCHEDULER_STATE",
      `scheduler state is ${describeValue(value)}, not a dict`,
      {
        key: formatPath(path),
        hint: "Load with a strategy that resets the scheduler.",
      },
    );
  }
  const plain = await pyToPlain(value, path);
  // A dict always converts to an object; checked so the type follows.
  if (!isPlainObject(plain))
    throw new FormatError("BAD_SCHEDULER_STATE", "scheduler state is not a dict", {
      key: formatPath(path),
    });
  return plain;
}
