/** State-dict key utilities: pattern filters, fuzzy key matching, merging checkpoints. */
export { filterStateDict, type KeyFilter } from "./filter.js";
export { compileKeyPatterns, type KeyPredicate, patternsMatchingNothing } from "./globs.js";
export type { KeyMapRule, KeyRename } from "./key-map.js";
export {
  type KeyInfo,
  type KeyMatch,
  type KeyPair,
  type MatchOptions,
  matchStateDictKeys,
} from "./match.js";
export { type MergeOptions, mergeStateDicts } from "./merge.js";
export type { PrefixRewrite } from "./prefix-alignment.js";
