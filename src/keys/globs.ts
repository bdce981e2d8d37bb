import picomatch from "picomatch/posix.js";
import { ConfigError } from "../errors.js";

/**
 * Patterns over state-dict keys: dotted PyTorch names (`encoder.layers.0.attn.weight`) and
 * TensorFlow.js weight names (`encoder/dense/kernel`).
 *
 * - A pattern without glob characters is a prefix ending at a separator: `decoder` matches
 *   `decoder`, `decoder.x.weight` and `decoder/kernel`, never `decoder2.weight`. A trailing dot
 *   (`decoder.`) means the same.
 * - Any other pattern is a picomatch glob over the whole key in which `*` crosses dots (a key
 *   is one "path segment"): `*.bias`, `encoder.layers.*.attn.*`, `head.{weight,bias}`.
 * - Negation (`!x`) is refused: the callers that take patterns have a separate exclude list.
 */

export type KeyPredicate = (key: string) => boolean;

// bash: `*` behaves as `**`, so it crosses anything (even a `/` in an odd key); dot: a key may
// start with `_` or `.` and must still match `*`.
const GLOB_OPTIONS = { bash: true, dot: true, windows: false } as const;

interface SplitPatterns {
  prefixes: Set<string>;
  globs: string[];
}

function splitPatterns(patterns: readonly string[]): SplitPatterns {
  const prefixes = new Set<string>();
  const globs: string[] = [];
  patterns.forEach((pattern, index) => {
    checkPattern(pattern, index);
    if (picomatch.scan(pattern).isGlob) globs.push(pattern);
    else prefixes.add(stripTrailingDots(pattern));
  });
  return { prefixes, globs };
}

function checkPattern(pattern: string, index: number): void {
  if (stripTrailingDots(pattern) === "") {
    throw new ConfigError("BAD_KEY_PATTERN", `key pattern ${index} is empty`, {
      hint: "Give a dotted prefix (decoder) or a glob (*.bias).",
    });
  }
  if (pattern.startsWith("!")) {
    throw new ConfigError("BAD_KEY_PATTERN", `key pattern '${pattern}' is a negation`, {
      hint: "Put the pattern without '!' in the exclude list instead.",
    });
  }
}

function stripTrailingDots(pattern: string): string {
  let end = pattern.length;
  while (end > 0 && pattern[end - 1] === ".") end--;
  return pattern.slice(0, end);
}

function compileGlobs(globs: readonly string[]): KeyPredicate | undefined {
  if (globs.length === 0) return undefined;
  try {
    return picomatch(globs as string[], GLOB_OPTIONS);
  } catch (cause) {
    throw new ConfigError("BAD_KEY_PATTERN", `invalid key glob in ${JSON.stringify(globs)}`, {
      hint: "Check brackets and braces; see picomatch's glob syntax.",
      cause,
    });
  }
}

/**
 * Whether `key` or one of its prefixes ending before a separator (`a`, `a.b`, ... for `a.b.c`)
 * is in `prefixes`. Both `.` (PyTorch names) and `/` (TensorFlow.js weight names) separate.
 */
function hasDottedPrefixIn(key: string, prefixes: ReadonlySet<string>): boolean {
  if (prefixes.size === 0) return false;
  if (prefixes.has(key)) return true;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if ((c === 0x2e || c === 0x2f) && prefixes.has(key.slice(0, i))) return true;
  }
  return false;
}

/** A predicate true for keys matched by any of `patterns` (false for every key when empty). */
export function compileKeyPatterns(patterns: readonly string[]): KeyPredicate {
  const { prefixes, globs } = splitPatterns(patterns);
  const glob = compileGlobs(globs);
  return (key) => hasDottedPrefixIn(key, prefixes) || glob?.(key) === true;
}

/**
 * The patterns that match none of `keys`, in the order given, so callers can refuse a typo:
 * a pattern that matches nothing is an error, not a silent no-op.
 */
export function patternsMatchingNothing(
  patterns: readonly string[],
  keys: Iterable<string>,
): string[] {
  const compiled = patterns.map((pattern) => ({ pattern, test: compileKeyPatterns([pattern]) }));
  let remaining = compiled.length;
  const matched = new Array<boolean>(compiled.length).fill(false);
  for (const key of keys) {
    if (remaining === 0) break;
    compiled.forEach(({ test }, i) => {
      if (!matched[i] && test(key)) {
        matched[i] = true;
        remaining--;
      }
    });
  }
  return compiled.filter((_, i) => !matched[i]).map(({ pattern }) => pattern);
}
