import { LoadError } from "../errors.js";
import type { Undo } from "./types.js";

/** What every target (in memory, tfjs) uses to keep each change all-or-nothing, and to test it. */

/** Makes chosen operations fail, for tests of rollback: checked before anything changes. */
export interface FaultInjection {
  /**
   * Called with the operation (`write`, `setTrainable`, `setState`, `reset`) and no name, then
   * once per parameter name the operation touches; returning true makes it throw a LoadError.
   */
  failOn: (op: string, name?: string) => boolean;
}

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
 * Called after validation and before the first change.
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
