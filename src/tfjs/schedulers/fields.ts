import { ConfigError, LoadError } from "../../errors.js";
import { isPlainObject } from "../../state/plain-value.js";

/**
 * Checks of scheduler fields and options. The same rules serve a state read from a checkpoint
 * (refused with a LoadError naming the field) and options given in code (a ConfigError naming
 * the option), so a scheduler built from a valid state can never fail to construct.
 */

export type Fail = (code: string, what: string, key: string, hint?: string) => never;

export const failState: Fail = (code, what, key, hint) => {
  throw new LoadError(code, what, { key, hint });
};

export const failOption: Fail = (code, what, key, hint) => {
  throw new ConfigError(code, what, { key, hint });
};

/** `path.field`, or `field` at the top. */
export function fieldKey(path: string, field: string): string {
  return path === "" ? field : `${path}.${field}`;
}

/** A state's own field (never one inherited through the prototype). */
export function ownField(state: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(state, name) ? state[name] : undefined;
}

/** Short text for a value in messages. */
export function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "None";
  if (typeof value === "string") return `the string '${value.slice(0, 40)}'`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (isPlainObject(value)) return "a dict";
  return typeof value === "object" ? (value.constructor?.name ?? "an object") : typeof value;
}

export function finiteNumber(value: unknown, key: string, fail: Fail): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    fail("BAD_SCHEDULER_FIELD", `${key} is ${describe(value)}, not a finite number`, key);
  }
  return value;
}

/** A whole number (Python int) of at least `min`. */
export function wholeNumber(value: unknown, key: string, min: number, fail: Fail): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    fail(
      "BAD_SCHEDULER_FIELD",
      `${key} is ${describe(value)}, not a whole number >= ${min}`,
      key,
      typeof value === "string" && /^-?\d+$/.test(value)
        ? "Whole numbers beyond 2^53 are not supported."
        : undefined,
    );
  }
  return value;
}

export function booleanField(value: unknown, key: string, fail: Fail): boolean {
  if (typeof value !== "boolean") {
    fail("BAD_SCHEDULER_FIELD", `${key} is ${describe(value)}, not True or False`, key);
  }
  return value;
}

/** A list of finite numbers; of exactly `length` items when given (one per param group). */
export function numberList(
  value: unknown,
  key: string,
  length: number | undefined,
  fail: Fail,
): number[] {
  if (!Array.isArray(value)) {
    fail("BAD_SCHEDULER_FIELD", `${key} is ${describe(value)}, not a list of numbers`, key);
  }
  if (length !== undefined && value.length !== length) {
    fail(
      "SCHEDULER_GROUP_COUNT",
      `${key} has ${value.length} values; the scheduler drives ${length} param group${length === 1 ? "" : "s"}`,
      key,
      "A scheduler state only loads into a scheduler over as many param groups.",
    );
  }
  return value.map((item, i) => finiteNumber(item, `${key}[${i}]`, fail));
}

export function wholeNumberList(value: unknown, key: string, min: number, fail: Fail): number[] {
  if (!Array.isArray(value)) {
    fail("BAD_SCHEDULER_FIELD", `${key} is ${describe(value)}, not a list of whole numbers`, key);
  }
  return value.map((item, i) => wholeNumber(item, `${key}[${i}]`, min, fail));
}
