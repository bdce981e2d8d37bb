import { ConfigError, LimitExceededError } from "../../errors.js";
import type { PickleLimits } from "./types.js";

/**
 * Default resource limits. A real 20,000-tensor Lightning checkpoint (state dict plus two Adam
 * moments per parameter: ~80,000 tensors, ~8 memo entries and ~60 opcodes each) needs about
 * 650,000 memo entries and 5 million opcodes; the defaults leave several times that. Every
 * opcode does bounded work and adds at most one stack slot, memo entry or container item, so
 * memory stays proportional to the file, and these caps keep a small hostile file small.
 */
export const DEFAULT_LIMITS: Readonly<PickleLimits> = Object.freeze({
  maxMemo: 4_000_000,
  maxStack: 2_000_000,
  // CPython's own recursion limit keeps pickled nesting below ~1,000 levels.
  maxMarkDepth: 4096,
  maxContainerItems: 16_000_000,
  // 64 KiB: a 524,288-bit integer; real checkpoints hold 64-bit ones.
  maxLongBytes: 65_536,
  // Below V8's longest string (2^29 - 24 UTF-16 units), so decoding cannot fail on length.
  maxStringBytes: 256 * 1024 * 1024,
  maxOperations: 64_000_000,
});

const LIMIT_NAMES = Object.keys(DEFAULT_LIMITS) as (keyof PickleLimits)[];

/** The defaults with `overrides` applied; each override must be a non-negative integer. */
export function resolveLimits(overrides: Partial<PickleLimits> = {}): PickleLimits {
  // Spelled out rather than spread: a spread copy's hidden class can die between unpickles, and
  // the unpickler's optimized loop is thrown away each time it does.
  const limits: PickleLimits = {
    maxMemo: DEFAULT_LIMITS.maxMemo,
    maxStack: DEFAULT_LIMITS.maxStack,
    maxMarkDepth: DEFAULT_LIMITS.maxMarkDepth,
    maxContainerItems: DEFAULT_LIMITS.maxContainerItems,
    maxLongBytes: DEFAULT_LIMITS.maxLongBytes,
    maxStringBytes: DEFAULT_LIMITS.maxStringBytes,
    maxOperations: DEFAULT_LIMITS.maxOperations,
  };
  for (const name of LIMIT_NAMES) {
    const value = overrides[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ConfigError("BAD_LIMIT", `limit ${name} must be a non-negative integer`, {
        hint: `Got ${String(value)}.`,
      });
    }
    limits[name] = value;
  }
  return limits;
}

/** The error for exceeding `name`; its code is the limit's name. */
export function limitExceeded(
  name: keyof PickleLimits,
  what: string,
  limit: number,
  location: { file: string | undefined; offset: number },
): LimitExceededError {
  return new LimitExceededError(name, `${what} exceeds the limit of ${limit}`, {
    ...location,
    hint: `If the file is trusted, raise limits.${name}.`,
  });
}
