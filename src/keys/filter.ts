import { compileKeyPatterns } from "./globs.js";

export interface KeyFilter {
  /** Keep only keys matching one of these (all keys when absent or empty). */
  include?: readonly string[];
  /** Then drop keys matching one of these. */
  exclude?: readonly string[];
}

/**
 * The entries of `dict` whose keys pass `include` then `exclude` (see globs.ts for the pattern
 * rules), in the dict's order. Values are not touched: tensors stay lazy.
 */
export function filterStateDict<T>(
  dict: ReadonlyMap<string, T>,
  { include, exclude }: KeyFilter = {},
): Map<string, T> {
  const included = include && include.length > 0 ? compileKeyPatterns(include) : () => true;
  const excluded = exclude && exclude.length > 0 ? compileKeyPatterns(exclude) : () => false;
  const kept = new Map<string, T>();
  for (const [key, value] of dict) {
    if (included(key) && !excluded(key)) kept.set(key, value);
  }
  return kept;
}
