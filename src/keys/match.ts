import type { DType } from "../tensors/dtype.js";
import { sameShape } from "../tensors/shape.js";
import { applyKeyMap, type KeyMapRule, type KeyRename } from "./key-map.js";
import { type AlignmentState, alignPrefixes, type PrefixRewrite } from "./prefix-alignment.js";

/** What matching needs to know about a tensor. */
export interface KeyInfo {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export interface KeyPair {
  source: string;
  target: string;
  /** Pairs are made by name; whether the shapes agree is for the caller to act on. */
  shapeMatches: boolean;
}

export interface KeyMatch {
  /** In target order. */
  pairs: KeyPair[];
  /** Target keys no source key was paired with, in target order. */
  missing: string[];
  /** Source keys paired with no target key, in source order. */
  unexpected: string[];
  /** The pairs whose shapes differ, in target order. */
  mismatched: KeyPair[];
  /** Prefix rewrites used, in the order chosen. */
  transforms: PrefixRewrite[];
  /** Source keys renamed by `keyMap`, in source order. */
  renamed: KeyRename[];
}

export interface MatchOptions {
  /** Renames applied to source keys before anything else. */
  keyMap?: readonly KeyMapRule[];
}

/**
 * Pairs the keys of a checkpoint's state dict (`source`) with a model's (`target`):
 * 1. `keyMap` rules rename source keys (two keys renamed to one name is an AmbiguousKeyError);
 * 2. equal names pair;
 * 3. prefix rewrites chosen over the whole dict pair what is left (see prefix-alignment.ts);
 * 4. a key with two readings under the chosen rewrites is an AmbiguousKeyError naming both.
 * Shapes are compared after pairing: a pair whose shapes differ stays a pair and is also
 * listed in `mismatched`; skipping it, failing or loading the overlap is the caller's choice.
 */
export function matchStateDictKeys(
  source: ReadonlyMap<string, KeyInfo>,
  target: ReadonlyMap<string, KeyInfo>,
  options: MatchOptions = {},
): KeyMatch {
  const sourceKeys = [...source.keys()];
  const targetNames = [...target.keys()];
  const { names, renamed } = applyKeyMap(sourceKeys, options.keyMap ?? []);
  const targetIndex = new Map(targetNames.map((name, t) => [name, t]));
  const state: AlignmentState = {
    sourceNames: names,
    targetNames,
    targetIndex,
    pairOfSource: new Int32Array(names.length).fill(-1),
    pairOfTarget: new Int32Array(targetNames.length).fill(-1),
    dictSize: Math.max(names.length, targetNames.length),
    sourceLabel: (s) => sourceKeys[s]!,
  };

  names.forEach((name, s) => {
    const t = targetIndex.get(name);
    if (t === undefined) return;
    state.pairOfSource[s] = t;
    state.pairOfTarget[t] = s;
  });
  const transforms = alignPrefixes(state);

  const pairs: KeyPair[] = [];
  const missing: string[] = [];
  targetNames.forEach((name, t) => {
    const s = state.pairOfTarget[t]!;
    if (s === -1) {
      missing.push(name);
      return;
    }
    const sourceKey = sourceKeys[s]!;
    const shapeMatches = sameShape(source.get(sourceKey)!.shape, target.get(name)!.shape);
    pairs.push({ source: sourceKey, target: name, shapeMatches });
  });
  const unexpected = sourceKeys.filter((_, s) => state.pairOfSource[s] === -1);
  const mismatched = pairs.filter((pair) => !pair.shapeMatches);
  return { pairs, missing, unexpected, mismatched, transforms, renamed };
}
