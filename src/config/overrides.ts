import { isCollection, parseDocument } from "yaml";
import { ConfigError } from "../errors.js";
import { type ConfigMapping, describeValue, isMapping, sameValue } from "./document.js";
import { type ConfigProblem, throwIfProblems } from "./problems.js";
import { LOADING_KEYS } from "./schema.js";
import { didYouMean, suggestionSuffix } from "./suggest.js";

/**
 * Hydra-style command-line overrides of a configuration document:
 *
 *   key.path=value     change a key; the key must exist, except for loadout's own keys
 *                      (checkpoint.source, checkpoint.loading and its options), which may be new
 *   +key.path=value    add a key that does not exist (creating mappings on the way)
 *   ++key.path=value   set a key whether it exists or not
 *   ~key.path          delete a key;  ~key.path=value  delete it only if it has that value
 *
 * Values are YAML scalars or flow collections (`true`, `1e-3`, `null`, `[a, b]`, `{k: v}`);
 * an empty value is the empty string, as in Hydra. Keys are separated by dots, so a key that
 * contains a dot cannot be addressed. A missing or null mapping on the way counts as empty
 * when the key may be created; any other non-mapping on the way is an error.
 */

export type OverrideOperation = "set" | "add" | "force" | "delete";

export interface ParsedOverride {
  /** The override as written. */
  text: string;
  operation: OverrideOperation;
  path: string[];
  /** Whether `=value` was given (always for set/add/force). */
  hasValue: boolean;
  value: unknown;
}

/** Keys loadout knows, which a plain `key=value` may create. */
const LOADOUT_KEYS = new Set([
  "checkpoint",
  "checkpoint.source",
  "checkpoint.loading",
  ...LOADING_KEYS.map((key) => `checkpoint.loading.${key}`),
]);

const MAX_ALIAS_COUNT = 100;

/** An override that cannot be applied; caught per override and reported with the others. */
function problem(message: string): ConfigError {
  return new ConfigError("CONFIG_OVERRIDE", message);
}

/** The YAML value of an override, refusing block collections (they cannot be typed on a command line). */
function parseValue(text: string): unknown {
  if (text.trim() === "") return "";
  const doc = parseDocument(text, { prettyErrors: false });
  const trouble = doc.errors[0] ?? doc.warnings[0];
  if (trouble) {
    throw problem(`value is not valid YAML (${trouble.message.split("\n")[0]}); quote it`);
  }
  if (isCollection(doc.contents) && !doc.contents.flow) {
    throw problem(
      "value is a block collection: write it in flow style ([a, b] or {k: v}), or quote it",
    );
  }
  return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
}

function parsePath(keyText: string): string[] {
  const path = keyText.split(".");
  for (const segment of path) {
    if (segment === "" || /\s/.test(segment)) {
      throw problem(`'${keyText}' is not a dotted key path (a.b.c)`);
    }
    if (segment === "__proto__") throw problem("'__proto__' is not a key loadout sets");
  }
  return path;
}

/** Parses one override; throws ConfigError (CONFIG_OVERRIDE) when it is malformed. */
export function parseOverride(text: string): ParsedOverride {
  try {
    return parseOverrideText(text);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError("CONFIG_OVERRIDE", `override '${text}': ${error.what}`);
  }
}

function parseOverrideText(text: string): ParsedOverride {
  let operation: OverrideOperation = "set";
  let rest = text;
  if (rest.startsWith("++")) [operation, rest] = ["force", rest.slice(2)];
  else if (rest.startsWith("+")) [operation, rest] = ["add", rest.slice(1)];
  else if (rest.startsWith("~")) [operation, rest] = ["delete", rest.slice(1)];
  const equals = rest.indexOf("=");
  const hasValue = equals >= 0;
  if (!hasValue && operation !== "delete") {
    throw problem("expected key=value (or ~key to delete a key)");
  }
  const path = parsePath((hasValue ? rest.slice(0, equals) : rest).trim());
  const value = hasValue ? parseValue(rest.slice(equals + 1)) : undefined;
  return { text, operation, path, hasValue, value };
}

/** May `key=value` create this key although it does not exist yet? */
function isLoadoutKey(path: readonly string[]): boolean {
  return LOADOUT_KEYS.has(path.join("."));
}

/**
 * The mappings from the root down to the parent of the last key, missing or null ones standing
 * in as empty when `mayCreate`; throws when the path cannot be followed.
 */
function mappingsAlong(
  root: ConfigMapping,
  override: ParsedOverride,
  mayCreate: boolean,
): ConfigMapping[] {
  const chain: ConfigMapping[] = [root];
  const { path } = override;
  for (let i = 0; i < path.length - 1; i++) {
    const parent = chain[i]!;
    const key = path[i]!;
    const child = Object.hasOwn(parent, key) ? parent[key] : undefined;
    if (isMapping(child)) chain.push(child);
    else if (child == null && mayCreate) chain.push({});
    else {
      const where = path.slice(0, i + 1).join(".");
      if (child === undefined) {
        throw problem(
          `${where} does not exist${suggestKey(parent, key)} (use +${override.path.join(".")}=... to add it)`,
        );
      }
      throw problem(`${where} is ${describeValue(child)}, not a mapping, so it has no keys`);
    }
  }
  return chain;
}

function suggestKey(parent: ConfigMapping, key: string): string {
  const hint = didYouMean(key, Object.keys(parent));
  return hint === "" ? "" : ` (${hint.trim()})`;
}

/** Copies the mappings along the path, replacing the last one with `last`. */
function rebuild(
  chain: readonly ConfigMapping[],
  path: readonly string[],
  last: ConfigMapping,
): ConfigMapping {
  let node = last;
  for (let i = chain.length - 2; i >= 0; i--) node = { ...chain[i]!, [path[i]!]: node };
  return node;
}

function applyOne(root: ConfigMapping, override: ParsedOverride): ConfigMapping {
  const { operation, path, value } = override;
  const key = path[path.length - 1]!;
  const dotted = path.join(".");
  const underLoading = path.length === 3 && dotted.startsWith("checkpoint.loading.");
  if (operation === "set" && underLoading && !isLoadoutKey(path)) {
    // We know every key of checkpoint.loading: an unknown one is a typo, not a new key.
    throw problem(`unknown key '${key}'${suggestionSuffix(key, LOADING_KEYS)}`);
  }
  const mayCreate =
    operation === "add" || operation === "force" || (operation === "set" && isLoadoutKey(path));
  const chain = mappingsAlong(root, override, mayCreate);
  const parent = chain[chain.length - 1]!;
  const exists = Object.hasOwn(parent, key);

  if (operation === "delete") {
    if (!exists) {
      throw problem(`${dotted} does not exist${suggestKey(parent, key)}, so it cannot be deleted`);
    }
    if (override.hasValue && !sameValue(parent[key], value)) {
      throw problem(
        `${dotted} is ${describeValue(parent[key])}, not ${describeValue(value)}, so it was not deleted`,
      );
    }
    const copy = { ...parent };
    delete copy[key];
    return rebuild(chain, path, copy);
  }
  if (operation === "add" && exists) {
    throw problem(
      `${dotted} already exists (${describeValue(parent[key])}): use ${dotted}=... to change it, or ++${dotted}=... to set it either way`,
    );
  }
  if (operation === "set" && !exists && !mayCreate) {
    throw problem(
      `${dotted} does not exist${suggestKey(parent, key)} (use +${dotted}=... to add it)`,
    );
  }
  return rebuild(chain, path, { ...parent, [key]: value });
}

/**
 * Applies `overrides` in order and returns the new document; the input is never changed
 * (unchanged sub-trees are shared with it). Every malformed or inapplicable override is
 * reported in one ConfigError (code CONFIG_OVERRIDE).
 */
export function applyOverrides(doc: unknown, overrides: readonly string[]): ConfigMapping {
  const root = doc ?? {};
  if (!isMapping(root)) {
    throw new ConfigError(
      "CONFIG_OVERRIDE",
      `overrides apply to a mapping, but the document is ${describeValue(root)}`,
    );
  }
  const problems: ConfigProblem[] = [];
  let result = root;
  for (const text of overrides) {
    try {
      result = applyOne(result, parseOverrideText(text));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push({ path: `override '${text}'`, message: error.what });
    }
  }
  throwIfProblems("CONFIG_OVERRIDE", problems);
  return result;
}
