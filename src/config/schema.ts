import * as z from "zod";
import { describeValue, isMapping } from "./document.js";
import { type ConfigProblem, formatPath } from "./problems.js";
import { suggestionSuffix } from "./suggest.js";

/**
 * The shape of loadout's configuration document, as zod schemas, and the translation of zod's
 * issues into loadout's messages (dotted key, bad value, allowed values, did-you-mean).
 * Rules between options and per-strategy defaults live in strategy-rules.ts.
 */

export const BUILTIN_STRATEGIES = [
  "weights_only",
  "transfer_learning",
  "warm_start",
  "cold_start",
] as const;
export type BuiltinStrategy = (typeof BUILTIN_STRATEGIES)[number];

export const MISMATCH_POLICIES = ["skip", "error", "overlap"] as const;
export type MismatchPolicy = (typeof MISMATCH_POLICIES)[number];

export const LOADING_MODES = ["transactional", "in_place"] as const;
export type LoadingMode = (typeof LOADING_MODES)[number];

/** Every key `checkpoint.loading` accepts, in the order the docs list them. */
export const LOADING_KEYS = [
  "type",
  "strict",
  "skip_mismatched",
  "mismatch",
  "freeze_loaded",
  "freeze",
  "reset_layers",
  "key_map",
  "include",
  "exclude",
  "mode",
] as const;
export type LoadingKey = (typeof LOADING_KEYS)[number];

/** Every key `checkpoint` accepts. */
export const CHECKPOINT_KEYS = ["source", "loading"] as const;

const KEY_MAP_ENTRY_KEYS = ["pattern", "replacement"] as const;

/** Why `pattern` is not a usable JS RegExp, or undefined when it is. */
export function regexProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const python = /\(\?P[<=]/.test(pattern)
      ? " Python's (?P<name>...) is (?<name>...) in JavaScript, and (?P=name) is \\k<name>."
      : "";
    return `${describeValue(pattern)} is not a valid JavaScript regular expression (${reason}).${python}`;
  }
}

/** Why `replacement` would not do what a Python user expects, or undefined. */
export function replacementProblem(replacement: string): string | undefined {
  if (/\\(\d|g<)/.test(replacement)) {
    return `${describeValue(replacement)} uses Python's \\1 or \\g<name>: JavaScript replacements write $1 and $<name>`;
  }
  return undefined;
}

/** Key map entries as the resolved config holds them. */
export type KeyMapEntry = { pattern: string; replacement: string };

const keyMapEntrySchema = z
  .strictObject({ pattern: z.string(), replacement: z.string() })
  .superRefine((entry, ctx) => {
    const bad = regexProblem(entry.pattern);
    if (bad)
      ctx.addIssue({ code: "custom", path: ["pattern"], message: bad, input: entry.pattern });
    const odd = replacementProblem(entry.replacement);
    if (odd) {
      ctx.addIssue({
        code: "custom",
        path: ["replacement"],
        message: odd,
        input: entry.replacement,
      });
    }
  });

/** The mapping form `{ "^backbone\\.": "encoder." }`, checked entry by entry. */
const keyMapMappingSchema = z.record(z.string(), z.string()).superRefine((mapping, ctx) => {
  for (const [pattern, replacement] of Object.entries(mapping)) {
    const bad = regexProblem(pattern);
    if (bad) ctx.addIssue({ code: "custom", path: [pattern], message: bad, input: pattern });
    const odd = replacementProblem(replacement);
    if (odd) ctx.addIssue({ code: "custom", path: [pattern], message: odd, input: replacement });
  }
});

/**
 * key_map: a list of `{pattern, replacement}` (applied in order) or a mapping pattern →
 * replacement (in file order, except that JS puts integer-like keys first: use the list form
 * when the order matters).
 */
export const keyMapSchema = z
  .union([z.array(keyMapEntrySchema), keyMapMappingSchema])
  .transform((value): KeyMapEntry[] =>
    Array.isArray(value)
      ? value.map((e) => ({ pattern: e.pattern, replacement: e.replacement }))
      : Object.entries(value).map(([pattern, replacement]) => ({ pattern, replacement })),
  );

/** Globs or dotted names: a list of non-empty strings. */
const nameListSchema = z.array(z.string().min(1));

/** The schema of each `checkpoint.loading` option on its own (for checking options one by one). */
export function loadingFieldSchemas(strategies: readonly string[]) {
  return {
    type: z.enum(strategies as [string, ...string[]]),
    strict: z.boolean(),
    skip_mismatched: z.boolean(),
    mismatch: z.enum(MISMATCH_POLICIES),
    freeze_loaded: z.boolean(),
    freeze: nameListSchema,
    reset_layers: nameListSchema,
    key_map: keyMapSchema,
    include: nameListSchema,
    exclude: nameListSchema,
    mode: z.enum(LOADING_MODES),
  } satisfies Record<LoadingKey, z.ZodType>;
}

/** `checkpoint.loading` as written: every option optional, unknown keys refused. */
export function loadingSectionSchema(strategies: readonly string[]) {
  const fields = loadingFieldSchemas(strategies);
  return z.strictObject({
    type: fields.type.optional(),
    strict: fields.strict.optional(),
    skip_mismatched: fields.skip_mismatched.optional(),
    mismatch: fields.mismatch.optional(),
    freeze_loaded: fields.freeze_loaded.optional(),
    freeze: fields.freeze.optional(),
    reset_layers: fields.reset_layers.optional(),
    key_map: fields.key_map.optional(),
    include: fields.include.optional(),
    exclude: fields.exclude.optional(),
    mode: fields.mode.optional(),
  });
}

/** A `checkpoint.loading` section that passed its schema (defaults not applied yet). */
export type LoadingSection = z.output<ReturnType<typeof loadingSectionSchema>>;

/**
 * The document around it: other top-level keys are kept as they are; `checkpoint` takes only
 * `source` and `loading` (checked separately); null stands for an empty section.
 */
export const documentSchema = z.looseObject({
  checkpoint: z
    .strictObject({
      source: z.string().min(1).nullable().optional(),
      loading: z.unknown().optional(),
    })
    .nullable()
    .optional(),
});

// ---------------------------------------------------------------------------------------------
// zod issues → loadout's problems

/** Keys a mapping at `path` accepts, for unknown-key suggestions. */
function knownKeysAt(path: readonly PropertyKey[]): readonly string[] {
  const last = path[path.length - 1];
  if (typeof last === "number") return KEY_MAP_ENTRY_KEYS;
  if (last === "loading") return LOADING_KEYS;
  if (last === "checkpoint") return CHECKPOINT_KEYS;
  return [];
}

const EXPECTED_TEXT: Record<string, string> = {
  boolean: "true or false",
  string: "a string",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

/** Names for enum values in messages: `'x' is not a strategy`. */
const ENUM_NOUNS: Record<string, string> = {
  type: "a strategy",
  mismatch: "a mismatch policy",
  mode: "a loading mode",
};

const YAML11_BOOLEANS = new Set(["yes", "no", "on", "off", "y", "n"]);

function invalidTypeMessage(
  expected: string,
  input: unknown,
  key: PropertyKey | undefined,
): string {
  if (input === undefined) return "missing (required)";
  const base = `expected ${EXPECTED_TEXT[expected] ?? expected}, got ${describeValue(input)}`;
  if (input === null) return `${base} (remove the key to get the default)`;
  if (expected === "boolean" && typeof input === "string") {
    return YAML11_BOOLEANS.has(input.toLowerCase())
      ? `${base} (YAML 1.2 reads ${input} as text: write true or false)`
      : base;
  }
  if (expected === "array" && typeof input === "string")
    return `${base} (write a list: [${input}])`;
  if (expected === "object" && typeof key === "number") {
    return `${base} (each entry is {pattern: ..., replacement: ...})`;
  }
  return base;
}

/** The issues of the union branch that matches the input's kind (list or mapping form). */
function keyMapBranchIssues(issue: z.core.$ZodIssueInvalidUnion): z.core.$ZodIssue[] | undefined {
  const input = issue.input;
  if (Array.isArray(input)) return issue.errors[0];
  if (isMapping(input)) return issue.errors[1];
  return undefined;
}

/** loadout's problems for one zod issue found under `prefix`. */
function problemsForIssue(
  issue: z.core.$ZodIssue,
  prefix: readonly PropertyKey[],
): ConfigProblem[] {
  const fullPath = [...prefix, ...issue.path];
  const path = formatPath(fullPath);
  const key = fullPath[fullPath.length - 1];
  switch (issue.code) {
    case "invalid_type":
      return [{ path, message: invalidTypeMessage(issue.expected, issue.input, key) }];
    case "invalid_value": {
      const allowed = issue.values.map(String);
      const noun = ENUM_NOUNS[String(key)] ?? "an allowed value";
      const shown = describeValue(issue.input);
      return [
        {
          path,
          message: `${shown} is not ${noun}${suggestionSuffix(String(issue.input), allowed)}`,
        },
      ];
    }
    case "unrecognized_keys": {
      const known = knownKeysAt(fullPath);
      return issue.keys.map((unknown) => ({
        path,
        message: `unknown key '${unknown}'${suggestionSuffix(unknown, known)}`,
      }));
    }
    case "too_small":
      return [{ path, message: "must not be empty" }];
    case "invalid_union": {
      const branch = keyMapBranchIssues(issue);
      if (branch === undefined) {
        return [
          {
            path,
            message: `expected a list of {pattern, replacement} or a mapping of pattern: replacement, got ${describeValue(issue.input)}`,
          },
        ];
      }
      return branch.flatMap((inner) => problemsForIssue(inner, fullPath));
    }
    default:
      return [{ path, message: issue.message }];
  }
}

/** loadout's problems for zod's issues, with paths under `prefix` (e.g. checkpoint.loading). */
export function problemsFromIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
): ConfigProblem[] {
  return issues.flatMap((issue) => problemsForIssue(issue, prefix));
}
