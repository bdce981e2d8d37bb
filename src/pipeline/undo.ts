import { LoadError } from "../errors.js";
import type { Undo } from "../targets/types.js";

/** Undoes committed changes newest first, every one even when some fail; returns the failures. */
async function undoEach(undos: readonly Undo[]): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (const undo of [...undos].reverse()) {
    try {
      await undo();
    } catch (failure) {
      failures.push(failure);
    }
  }
  return failures;
}

function rollbackFailed(
  what: string,
  failures: unknown[],
  file: string,
  cause: unknown,
): LoadError {
  return new LoadError(
    "ROLLBACK_FAILED",
    `${what} and ${failures.length} target(s) could not be restored`,
    {
      file,
      cause: cause ?? failures[0],
      hint: "The targets may be inconsistent: reload them from a known state.",
    },
  );
}

/** Undoes `undos` (newest first); a change that cannot be undone is a ROLLBACK_FAILED LoadError. */
export async function undoAll(undos: readonly Undo[], file: string): Promise<void> {
  const failures = await undoEach(undos);
  if (failures.length > 0) throw rollbackFailed("undoing a load failed", failures, file, undefined);
}

/**
 * After `error`, undoes `undos` and rethrows `error`; when some change cannot be undone, throws
 * a ROLLBACK_FAILED LoadError instead, since the targets may then be inconsistent.
 */
export async function rollBack(
  undos: readonly Undo[],
  error: unknown,
  file: string,
): Promise<never> {
  const failures = await undoEach(undos);
  if (failures.length > 0) {
    const reason = (error as Error)?.message ?? String(error);
    throw rollbackFailed(`load failed (${reason})`, failures, file, error);
  }
  throw error;
}
