import { describeValue } from "./document.js";
import type { ConfigProblem } from "./problems.js";
import type { BuiltinStrategy, LoadingSection, MismatchPolicy } from "./schema.js";
import type { LoadingConfig } from "./types.js";

/**
 * Per-strategy defaults and the rules between options (docs/configuration.md has them as a
 * table). The principle: a value that asks a strategy for something it cannot do, or that
 * contradicts another value, is an error; a value that asks for nothing (an empty list,
 * `freeze_loaded: false`) is accepted anywhere.
 */

interface StrategyDefaults {
  strict: boolean;
  mismatch: MismatchPolicy;
}

export const STRATEGY_DEFAULTS: Readonly<Record<BuiltinStrategy, StrategyDefaults>> = {
  weights_only: { strict: true, mismatch: "error" },
  transfer_learning: { strict: false, mismatch: "skip" },
  warm_start: { strict: true, mismatch: "error" },
  cold_start: { strict: true, mismatch: "error" },
};

/** Defaults of a strategy; registered custom strategies get weights_only's. */
export function strategyDefaults(type: string): StrategyDefaults {
  return Object.hasOwn(STRATEGY_DEFAULTS, type)
    ? STRATEGY_DEFAULTS[type as BuiltinStrategy]
    : STRATEGY_DEFAULTS.weights_only;
}

/** Where a value came from, as messages say it: `mismatch: skip` or `mismatch: skip (transfer_learning's default)`. */
interface Sourced<T> {
  value: T;
  /** The key the user wrote, or undefined for a default. */
  key: "mismatch" | "skip_mismatched" | "strict" | undefined;
  text: string;
}

function resolveMismatch(
  given: LoadingSection,
  type: string | undefined,
  problems: ConfigProblem[],
  at: (key: string) => string,
): Sourced<MismatchPolicy> | undefined {
  const { mismatch, skip_mismatched: skip } = given;
  if (mismatch !== undefined) {
    if (skip !== undefined && skip !== (mismatch === "skip")) {
      problems.push({
        path: at("skip_mismatched"),
        message:
          mismatch === "overlap"
            ? `${skip} contradicts mismatch: overlap (overlap copies the overlapping block instead of skipping; remove skip_mismatched)`
            : `${skip} contradicts mismatch: ${mismatch} (skip_mismatched: true is the same as mismatch: skip; keep only mismatch)`,
      });
    }
    return { value: mismatch, key: "mismatch", text: `mismatch: ${mismatch}` };
  }
  if (skip !== undefined) {
    return {
      value: skip ? "skip" : "error",
      key: "skip_mismatched",
      text: `skip_mismatched: ${skip}`,
    };
  }
  if (type === undefined) return undefined;
  const value = strategyDefaults(type).mismatch;
  return { value, key: undefined, text: `mismatch: ${value} (${type}'s default)` };
}

function resolveStrict(
  given: LoadingSection,
  type: string | undefined,
): Sourced<boolean> | undefined {
  if (given.strict !== undefined) {
    return { value: given.strict, key: "strict", text: `strict: ${given.strict}` };
  }
  if (type === undefined) return undefined;
  const value = strategyDefaults(type).strict;
  return { value, key: undefined, text: `strict: ${value} (${type}'s default)` };
}

/** warm_start resumes a run exactly: nothing partial, nothing frozen wholesale. */
function warmStartProblems(
  given: LoadingSection,
  mismatch: Sourced<MismatchPolicy> | undefined,
  at: (key: string) => string,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (given.strict === false) {
    problems.push({
      path: at("strict"),
      message:
        "false is not allowed with warm_start: resuming restores every tensor exactly (use weights_only or transfer_learning for a partial load)",
    });
  }
  if (mismatch?.key !== undefined && mismatch.value !== "error") {
    const written = mismatch.key === "mismatch" ? describeValue(given.mismatch) : "true";
    problems.push({
      path: at(mismatch.key),
      message: `${written} is not allowed with warm_start: a resumed run needs every shape to match (use transfer_learning to skip or overlap mismatched tensors)`,
    });
  }
  if (given.freeze_loaded === true) {
    problems.push({
      path: at("freeze_loaded"),
      message:
        "true is not allowed with warm_start: it would freeze the whole resumed model (use freeze to freeze named parts)",
    });
  }
  return problems;
}

/** strict fails on any shape mismatch, so it cannot go with skip or overlap. */
function strictMismatchProblem(
  strict: Sourced<boolean>,
  mismatch: Sourced<MismatchPolicy>,
  at: (key: string) => string,
): ConfigProblem | undefined {
  if (!strict.value || mismatch.value === "error") return undefined;
  const why = "a strict load fails on any shape mismatch";
  if (strict.key !== undefined) {
    const fix =
      mismatch.key === undefined
        ? "add mismatch: error for a strict load, or remove strict"
        : `set strict: false to ${mismatch.value} mismatched tensors`;
    return { path: at("strict"), message: `true contradicts ${mismatch.text}: ${why} (${fix})` };
  }
  const written = mismatch.key === "mismatch" ? `'${mismatch.value}'` : "true";
  return {
    path: at(mismatch.key ?? "mismatch"),
    message: `${written} needs strict: false, but ${strict.text}: ${why} (add strict: false)`,
  };
}

/**
 * Applies `type`'s defaults to the options the user gave (each already valid on its own) and
 * checks the rules between them. `type` is undefined when it is missing or invalid: then only
 * the rules between written values are checked. Keys in problems are made by `at`.
 */
export function applyStrategyRules(
  given: LoadingSection,
  type: string | undefined,
  at: (key: string) => string,
): { config: LoadingConfig | undefined; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const mismatch = resolveMismatch(given, type, problems, at);
  const strict = resolveStrict(given, type);

  if (type === "warm_start") problems.push(...warmStartProblems(given, mismatch, at));
  else if (strict !== undefined && mismatch !== undefined) {
    const problem = strictMismatchProblem(strict, mismatch, at);
    if (problem) problems.push(problem);
  }

  const resetLayers = given.reset_layers ?? [];
  if (type !== undefined && type !== "cold_start" && resetLayers.length > 0) {
    problems.push({
      path: at("reset_layers"),
      message: `only cold_start resets layers, and type is '${type}' (use type: cold_start, or remove reset_layers)`,
    });
  }

  if (type === undefined || strict === undefined || mismatch === undefined || problems.length > 0) {
    return { config: undefined, problems };
  }
  return {
    config: {
      type,
      strict: strict.value,
      skip_mismatched: mismatch.value === "skip",
      mismatch: mismatch.value,
      freeze_loaded: given.freeze_loaded ?? false,
      freeze: [...(given.freeze ?? [])],
      reset_layers: [...resetLayers],
      key_map: (given.key_map ?? []).map((e) => ({ ...e })),
      include: [...(given.include ?? [])],
      exclude: [...(given.exclude ?? [])],
      mode: given.mode ?? "transactional",
    },
    problems,
  };
}
