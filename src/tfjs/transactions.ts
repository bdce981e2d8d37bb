import { LoadError } from "../errors.js";
import type { FaultInjection } from "../targets/memory.js";
import type { Undo } from "../targets/types.js";

/** Helpers the tfjs targets share to keep every change all-or-nothing. */

/** An Undo that acts the first time only (a second call must not undo later changes). */
export function once(restore: () => void): Undo {
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    restore();
  };
}

/**
 * Throws a LoadError when `faults` asks `op` to fail, as a whole (no name) or for one of `names`.
 * Called after validation and before the first change, as memory.ts's targets do.
 */
export function injectFaults(
  faults: FaultInjection | undefined,
  op: string,
  names: Iterable<string>,
): void {
  if (!faults) return;
  const fail = (name?: string) => {
    throw new LoadError(
      "INJECTED_FAULT",
      `injected failure in ${op}${name === undefined ? "" : ` of '${name}'`}`,
      { key: name },
    );
  };
  if (faults.failOn(op)) fail();
  for (const name of names) if (faults.failOn(op, name)) fail(name);
}
