/**
 * A configuration document as parsed from YAML: plain mappings, lists and scalars. Helpers here
 * read it without changing it; every edit elsewhere copies the mappings it changes.
 */

/** A YAML mapping as a plain object. */
export type ConfigMapping = { [key: string]: unknown };

export function isMapping(value: unknown): value is ConfigMapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The value at `path` (own keys only), or undefined when a step is missing or not a mapping. */
export function getPath(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const key of path) {
    if (!isMapping(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

const MAX_SHOWN_LENGTH = 80;

/** A value as an error message shows it: `'text'`, `12`, `true`, `null`, `a list`, `a mapping`. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    const shown =
      value.length > MAX_SHOWN_LENGTH ? `${value.slice(0, MAX_SHOWN_LENGTH)}...` : value;
    return `'${shown}'`;
  }
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

/**
 * Structural equality of two parsed YAML values (mappings compare by keys, not key order).
 * Iterative, so a deeply nested document cannot exhaust the stack.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop()!;
    if (x === y || Object.is(x, y)) continue;
    if (Array.isArray(x) && Array.isArray(y)) {
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) stack.push([x[i], y[i]]);
      continue;
    }
    if (isMapping(x) && isMapping(y)) {
      const keys = Object.keys(x);
      if (keys.length !== Object.keys(y).length) return false;
      for (const key of keys) {
        if (!Object.hasOwn(y, key)) return false;
        stack.push([x[key], y[key]]);
      }
      continue;
    }
    return false;
  }
  return true;
}
