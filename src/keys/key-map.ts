import { AmbiguousKeyError, ConfigError } from "../errors.js";

/**
 * A user rename of source keys: every match of `pattern` (a JavaScript regular expression) in a
 * key is replaced by `replacement`, which may use `$1`, `$<name>` and `$&`
 * (`{pattern: "^encoder\\.", replacement: "backbone."}`).
 */
export interface KeyMapRule {
  readonly pattern: string;
  readonly replacement: string;
}

export interface KeyRename {
  source: string;
  renamedTo: string;
}

export interface MappedKeys {
  /** The name each source key goes by after the rules, in source order. */
  names: string[];
  /** The keys the rules changed, in source order. */
  renamed: KeyRename[];
}

function compileRule(rule: KeyMapRule, index: number): RegExp {
  try {
    return new RegExp(rule.pattern, "g");
  } catch (cause) {
    throw new ConfigError(
      "BAD_KEY_MAP",
      `key_map rule ${index} has an invalid pattern '${rule.pattern}'`,
      { hint: "Patterns are JavaScript regular expressions.", cause },
    );
  }
}

/**
 * Applies `rules` in order to every key. Two source keys ending up with one name would make the
 * match depend on which one wins, so that is refused, naming both.
 */
export function applyKeyMap(keys: readonly string[], rules: readonly KeyMapRule[]): MappedKeys {
  if (rules.length === 0) return { names: [...keys], renamed: [] };
  const compiled = rules.map((rule, i) => ({ regex: compileRule(rule, i), rule }));
  const names: string[] = [];
  const renamed: KeyRename[] = [];
  const ownerOf = new Map<string, string>();
  for (const key of keys) {
    let name = key;
    compiled.forEach(({ regex, rule }) => {
      name = name.replace(regex, rule.replacement);
    });
    if (name === "") {
      throw new ConfigError("BAD_KEY_MAP", "key_map turns a key into an empty name", {
        key,
        hint: "Anchor the rule's pattern so it leaves part of the key.",
      });
    }
    const owner = ownerOf.get(name);
    if (owner !== undefined) {
      throw new AmbiguousKeyError(
        "KEY_MAP_COLLISION",
        `key_map gives source keys '${owner}' and '${key}' the same name '${name}'`,
        { key: name, hint: "Make the key_map rules more specific, or exclude one of the keys." },
      );
    }
    ownerOf.set(name, key);
    names.push(name);
    if (name !== key) renamed.push({ source: key, renamedTo: name });
  }
  return { names, renamed };
}
