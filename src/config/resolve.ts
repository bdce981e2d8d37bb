import { type ConfigMapping, describeValue, isMapping } from "./document.js";
import { type ConfigProblem, formatPath, throwIfProblems } from "./problems.js";
import {
  BUILTIN_STRATEGIES,
  documentSchema,
  LOADING_KEYS,
  type LoadingSection,
  loadingFieldSchemas,
  loadingSectionSchema,
  problemsFromIssues,
} from "./schema.js";
import { applyStrategyRules } from "./strategy-rules.js";
import { closestMatches, suggestionSuffix } from "./suggest.js";
import type { LoadingConfig, LoadoutConfig } from "./types.js";

/** A resolved document: loadout's `checkpoint` section complete, other top-level keys as written. */
export type LoadoutDocument = LoadoutConfig & ConfigMapping;

export interface ResolveOptions {
  /** Names of registered custom strategies (the four built-in ones are always known). */
  knownTypes?: readonly string[];
  /** Strategy used when the document names none; without it a missing type is an error. */
  defaultType?: string;
  /** File the configuration came from, for error messages. */
  file?: string;
}

export type CheckResult<T> =
  | { ok: true; value: T; problems: [] }
  | { ok: false; value: undefined; problems: ConfigProblem[] };

const LOADING_PATH = ["checkpoint", "loading"] as const;

function strategiesOf(options: ResolveOptions): string[] {
  return [...new Set([...BUILTIN_STRATEGIES, ...(options.knownTypes ?? [])])];
}

function result<T>(value: T | undefined, problems: ConfigProblem[]): CheckResult<T> {
  return problems.length === 0 && value !== undefined
    ? { ok: true, value, problems: [] }
    : { ok: false, value: undefined, problems };
}

/**
 * The options of a loading section that are valid on their own, so that the rules between
 * options can still be checked (and reported together) when some other option is wrong.
 */
function validOptions(raw: ConfigMapping, strategies: readonly string[]): LoadingSection {
  const fields = loadingFieldSchemas(strategies);
  const valid: Record<string, unknown> = {};
  for (const key of LOADING_KEYS) {
    if (!Object.hasOwn(raw, key)) continue;
    const parsed = fields[key].safeParse(raw[key]);
    if (parsed.success) valid[key] = parsed.data;
  }
  return valid as LoadingSection;
}

/**
 * Checks `checkpoint.loading` (`raw`; undefined or null when absent) and applies its strategy's
 * defaults. Returns every problem found, each keyed under `checkpoint.loading`.
 */
export function checkLoadingConfig(
  raw: unknown,
  options: ResolveOptions = {},
): CheckResult<LoadingConfig> {
  const strategies = strategiesOf(options);
  const at = (key: string) => formatPath([...LOADING_PATH, key]);
  const section = raw ?? {};
  const problems: ConfigProblem[] = [];

  if (options.defaultType !== undefined && !strategies.includes(options.defaultType)) {
    problems.push({
      path: "(default type)",
      message: `'${options.defaultType}' is not a strategy${suggestionSuffix(options.defaultType, strategies)}`,
    });
  }
  const parsed = loadingSectionSchema(strategies).safeParse(section, { reportInput: true });
  if (!parsed.success) problems.push(...problemsFromIssues(parsed.error.issues, LOADING_PATH));
  if (!isMapping(section)) return result<LoadingConfig>(undefined, problems);

  const given = parsed.success ? parsed.data : validOptions(section, strategies);
  // An invalid type leaves `type` undefined: only the rules between written values apply then.
  let type = given.type;
  if (section.type === undefined) {
    if (options.defaultType === undefined) {
      problems.push({
        path: at("type"),
        message: `missing: name a strategy (allowed: ${strategies.join(", ")})`,
      });
    } else if (strategies.includes(options.defaultType)) type = options.defaultType;
  }

  const rules = applyStrategyRules(given, type, at);
  problems.push(...rules.problems);
  return result(rules.config, problems);
}

/** Like checkLoadingConfig, but throws one ConfigError (code CONFIG_INVALID) listing every problem. */
export function resolveLoadingConfig(raw: unknown, options: ResolveOptions = {}): LoadingConfig {
  const checked = checkLoadingConfig(raw, options);
  throwIfProblems("CONFIG_INVALID", checked.problems, options.file);
  return checked.value!;
}

/**
 * Checks a whole document (after overrides and legacy migration) and resolves its
 * `checkpoint.loading`. Top-level keys loadout does not know are kept as they are.
 */
export function checkConfigDocument(
  doc: unknown,
  options: ResolveOptions = {},
): CheckResult<LoadoutDocument> {
  const root = doc ?? {};
  if (!isMapping(root)) {
    return result<LoadoutDocument>(undefined, [
      {
        path: "(top level)",
        message: `expected a mapping of keys to values, got ${describeValue(root)}`,
      },
    ]);
  }
  const problems: ConfigProblem[] = [];
  const parsed = documentSchema.safeParse(root, { reportInput: true });
  if (!parsed.success) problems.push(...problemsFromIssues(parsed.error.issues));

  const checkpoint = isMapping(root.checkpoint) ? root.checkpoint : {};
  const loading = checkLoadingConfig(checkpoint.loading, options);
  problems.push(...loading.problems);
  if (root.checkpoint == null && !loading.ok) problems.push(...misspeltCheckpointKeys(root));
  if (!parsed.success || !loading.ok) return result<LoadoutDocument>(undefined, problems);

  const source = parsed.data.checkpoint?.source;
  const resolved: LoadoutDocument = {
    ...root,
    checkpoint: source == null ? { loading: loading.value } : { source, loading: loading.value },
  };
  return result(resolved, problems);
}

/** With no `checkpoint` section, a top-level key close to it is most likely a misspelling. */
function misspeltCheckpointKeys(root: ConfigMapping): ConfigProblem[] {
  return Object.keys(root)
    .filter((key) => closestMatches(key, ["checkpoint"]).length > 0)
    .map((key) => ({ path: key, message: "unknown top-level key (did you mean 'checkpoint'?)" }));
}

/** Like checkConfigDocument, but throws one ConfigError (code CONFIG_INVALID) listing every problem. */
export function resolveConfigDocument(doc: unknown, options: ResolveOptions = {}): LoadoutDocument {
  const checked = checkConfigDocument(doc, options);
  throwIfProblems("CONFIG_INVALID", checked.problems, options.file);
  return checked.value!;
}
