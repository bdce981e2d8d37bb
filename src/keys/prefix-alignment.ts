import { AmbiguousKeyError } from "../errors.js";
import { indexBySuffix, prefixCounter, prefixLengths } from "./key-index.js";

/**
 * Prefix alignment: the keys left after exact matching are often the same names under a
 * different wrapper (`module.` from DistributedDataParallel, `_orig_mod.` from torch.compile,
 * `model.` from Lightning, `model.model.` from anemoi). A rewrite "strip source prefix `from`,
 * add target prefix `to`" is chosen over the whole dict, by how many keys it pairs, never key
 * by key, so one coincidental name cannot drag a key somewhere else.
 *
 * Rules, applied in rounds until no rewrite qualifies (at most MAX_REWRITES rounds):
 * - `from` and `to` are dotted prefixes of up to 3 segments (or empty) and
 *   leave a non-empty rest of the key.
 * - A wrapper rewrite (every segment of `from` and `to` is `module`, `_orig_mod` or `model`)
 *   qualifies when it pairs at least 1 key.
 * - Any other rewrite is a rename (`encoder.` → `backbone.`) and qualifies only when it pairs at
 *   least 2 keys and at least 1% of the larger dict's keys, and at least half of the still
 *   unpaired keys under `from` (source) and under `to` (target): a rename moves a module's
 *   keys together, not one tensor whose last names happen to coincide.
 * - The rewrite pairing most keys wins; ties prefer wrapper rewrites, then shorter prefixes.
 *   Two tied rewrites that would pair some key differently are an AmbiguousKeyError.
 * - Each pair counts for the shortest rewrite that makes it: `module.layers.` → `layers.`
 *   only repeats part of `module.` → ``. (So a rename is judged at the shortest prefix that
 *   explains it; when that fails the coverage rule, nothing is renamed: use a key_map rule.)
 * - After the last round, a key that a chosen rewrite would send to a target paired with
 *   another key (exactly or by another rewrite), or to a second target, is an AmbiguousKeyError.
 * Votes come from hashing keys by suffix, so a round costs time linear in the keys; a suffix
 * shared by more than MAX_SUFFIX_SHARERS target keys (`weight`) is too common to be evidence
 * and casts no votes (the chosen rewrite is still applied to such keys).
 */

export interface PrefixRewrite {
  /** Prefix stripped from source keys, with its trailing dot (`module.`), or empty. */
  from: string;
  /** Prefix put in its place, or empty. */
  to: string;
  /** Keys it paired. */
  count: number;
}

export interface AlignmentState {
  /** Source key names (after key_map). */
  readonly sourceNames: readonly string[];
  readonly targetNames: readonly string[];
  readonly targetIndex: ReadonlyMap<string, number>;
  /** Target index each source key is paired with, or -1; updated in place. */
  readonly pairOfSource: Int32Array;
  /** Source index each target key is paired with, or -1; updated in place. */
  readonly pairOfTarget: Int32Array;
  /** Key count of the larger dict, for the rename minimum. */
  readonly dictSize: number;
  /** The original source key, for messages. */
  readonly sourceLabel: (index: number) => string;
}

const MAX_REWRITES = 8;
const MAX_SUFFIX_SHARERS = 16;
const WRAPPER_SEGMENTS = new Set(["module", "_orig_mod", "model"]);
const RENAME_MIN_KEYS = 2;
const RENAME_MIN_DICT_FRACTION = 0.01;
const RENAME_MIN_COVERAGE = 0.5;

interface Candidate {
  from: string;
  to: string;
  /** Pairs it would make, flattened: source index, target index, ... */
  pairs: number[];
  wrapper: boolean;
}

function isWrapperPrefix(prefix: string): boolean {
  if (prefix === "") return true;
  const segments = prefix.slice(0, -1).split(".");
  return segments.every((segment) => WRAPPER_SEGMENTS.has(segment));
}

function describeRewrite(from: string, to: string): string {
  return `'${from}' → '${to}'`;
}

/** Every rewrite that would pair an unpaired source key with an unpaired target key. */
function collectCandidates(state: AlignmentState): Candidate[] {
  const { sourceNames, targetNames, pairOfSource, pairOfTarget } = state;
  const index = indexBySuffix(targetNames, pairOfTarget);
  const byRewrite = new Map<string, Map<string, Candidate>>();
  const candidates: Candidate[] = [];
  const reached: number[] = [];
  const lengths: number[] = [];
  sourceNames.forEach((name, s) => {
    if (pairOfSource[s] !== -1) return;
    reached.length = 0;
    // Shortest prefix first, so each pair is credited to the shortest rewrite making it.
    for (const length of prefixLengths(name, lengths)) {
      const head = index.heads.get(length === 0 ? name : name.slice(length));
      if (head === undefined || index.size[head]! > MAX_SUFFIX_SHARERS) continue;
      let byTo: Map<string, Candidate> | undefined;
      for (let e = head; e !== -1; e = index.next[e]!) {
        const t = index.key[e]!;
        // `module.layers.` → `layers.` pairs a subset of what `module.` → `` pairs, the same
        // way, and loses every tie to it: crediting only the shorter keeps ties meaningful.
        if (reached.includes(t)) continue;
        reached.push(t);
        const from = name.slice(0, length);
        const to = targetNames[t]!.slice(0, index.prefixLength[e]!);
        if (from === to) continue; // the identity: exact matching already had its chance
        byTo ??= byRewrite.get(from);
        if (!byTo) {
          byTo = new Map();
          byRewrite.set(from, byTo);
        }
        let candidate = byTo.get(to);
        if (!candidate) {
          const wrapper = isWrapperPrefix(from) && isWrapperPrefix(to);
          candidate = { from, to, pairs: [], wrapper };
          byTo.set(to, candidate);
          candidates.push(candidate);
        }
        // Each source key votes at most once per rewrite, in source order.
        candidate.pairs.push(s, t);
      }
    }
  });
  return candidates;
}

const countOf = (candidate: Candidate) => candidate.pairs.length / 2;

interface RoundRules {
  /** Whether `candidate` pairs enough keys to be applied (see the rules at the top). */
  qualifies(candidate: Candidate): boolean;
  /** Refuses `other`, tied with `chosen`, when the two would pair some key differently. */
  assertCompatible(chosen: Candidate, other: Candidate): void;
}

function roundRules(state: AlignmentState): RoundRules {
  const { sourceNames, targetNames, pairOfSource, pairOfTarget, sourceLabel } = state;
  const minimumRename = Math.max(
    RENAME_MIN_KEYS,
    Math.ceil(state.dictSize * RENAME_MIN_DICT_FRACTION),
  );
  const sourcesUnder = prefixCounter(sourceNames, pairOfSource);
  const targetsUnder = prefixCounter(targetNames, pairOfTarget);
  const qualifies = (candidate: Candidate) => {
    const count = countOf(candidate);
    if (candidate.wrapper) return count >= 1;
    return (
      count >= minimumRename &&
      count >= RENAME_MIN_COVERAGE * sourcesUnder(candidate.from) &&
      count >= RENAME_MIN_COVERAGE * targetsUnder(candidate.to)
    );
  };

  // The chosen rewrite's pairs, indexed both ways; built on the first tie.
  let targetOfChosen: Int32Array | undefined;
  let sourceOfChosen: Int32Array | undefined;
  const assertCompatible = (chosen: Candidate, other: Candidate) => {
    if (!targetOfChosen || !sourceOfChosen) {
      targetOfChosen = new Int32Array(sourceNames.length).fill(-1);
      sourceOfChosen = new Int32Array(targetNames.length).fill(-1);
      for (let k = 0; k < chosen.pairs.length; k += 2) {
        targetOfChosen[chosen.pairs[k]!] = chosen.pairs[k + 1]!;
        sourceOfChosen[chosen.pairs[k + 1]!] = chosen.pairs[k]!;
      }
    }
    for (let k = 0; k < other.pairs.length; k += 2) {
      const s = other.pairs[k]!;
      const t = other.pairs[k + 1]!;
      const chosenTarget = targetOfChosen[s]!;
      const chosenSource = sourceOfChosen[t]!;
      if (chosenTarget === t || (chosenTarget === -1 && chosenSource === -1)) continue;
      if (!qualifies(other)) return;
      const a = describeRewrite(chosen.from, chosen.to);
      const b = describeRewrite(other.from, other.to);
      const tie = `(both rewrites pair ${countOf(chosen)} keys)`;
      if (chosenTarget !== -1) {
        throw new AmbiguousKeyError(
          "AMBIGUOUS_KEY",
          `source key '${sourceLabel(s)}' matches both target keys ` +
            `'${targetNames[chosenTarget]}' ` +
            `(prefix ${a}) and '${targetNames[t]}' (prefix ${b}) ${tie}`,
          { key: sourceLabel(s), hint: ambiguityHint(chosen) },
        );
      }
      throw new AmbiguousKeyError(
        "AMBIGUOUS_KEY",
        `source keys '${sourceLabel(chosenSource)}' (prefix ${a}) and '${sourceLabel(s)}' ` +
          `(prefix ${b}) both match target key '${targetNames[t]}' ${tie}`,
        { key: targetNames[t], hint: ambiguityHint(chosen) },
      );
    }
  };
  return { qualifies, assertCompatible };
}

function compareCandidates(a: Candidate, b: Candidate): number {
  return (
    countOf(b) - countOf(a) ||
    Number(b.wrapper) - Number(a.wrapper) ||
    a.from.length + a.to.length - (b.from.length + b.to.length) ||
    (a.from < b.from ? -1 : a.from > b.from ? 1 : 0) ||
    (a.to < b.to ? -1 : a.to > b.to ? 1 : 0)
  );
}

function ambiguityHint({ from, to }: { from: string; to: string }): string {
  const pattern = `^${from.replaceAll(".", "\\.")}`;
  return (
    `Say which is meant with a key_map rule (e.g. pattern '${pattern}', replacement '${to}'), ` +
    "or drop the other keys with an exclude pattern."
  );
}

/** Pairs every unpaired source key under `from` whose rewritten name is an unpaired target. */
function applyRewrite(
  { from, to }: { from: string; to: string },
  state: AlignmentState,
  pairedBy: Int8Array,
  rewrite: number,
): number {
  const { sourceNames, targetIndex, pairOfSource, pairOfTarget } = state;
  let count = 0;
  sourceNames.forEach((name, s) => {
    if (pairOfSource[s] !== -1 || name.length <= from.length || !name.startsWith(from)) return;
    const t = targetIndex.get(to + name.slice(from.length));
    if (t === undefined || pairOfTarget[t] !== -1) return;
    pairOfSource[s] = t;
    pairOfTarget[t] = s;
    pairedBy[s] = rewrite;
    count++;
  });
  return count;
}

/**
 * Chooses and applies prefix rewrites round by round, then refuses any key left with a second
 * reading under them; returns the rewrites in the order applied.
 */
export function alignPrefixes(state: AlignmentState): PrefixRewrite[] {
  const rewrites: PrefixRewrite[] = [];
  // Which rewrite paired each source key (-1: exact match, or none).
  const pairedBy = new Int8Array(state.sourceNames.length).fill(-1);
  while (rewrites.length < MAX_REWRITES) {
    const rules = roundRules(state);
    const candidates = collectCandidates(state).sort(compareCandidates);
    const chosen = candidates.find(rules.qualifies);
    if (!chosen) break;
    for (const other of candidates) {
      if (countOf(other) < countOf(chosen)) break;
      if (other !== chosen) rules.assertCompatible(chosen, other);
    }
    const count = applyRewrite(chosen, state, pairedBy, rewrites.length);
    rewrites.push({ from: chosen.from, to: chosen.to, count });
  }
  assertUnambiguous(state, rewrites, pairedBy);
  return rewrites;
}

/**
 * With the rewrites chosen, no key may have a second reading: a source key that some chosen
 * rewrite (or its own name) sends to a target paired with another key, or to a second target.
 */
function assertUnambiguous(
  state: AlignmentState,
  rewrites: readonly PrefixRewrite[],
  pairedBy: Int8Array,
): void {
  const { sourceNames, targetNames, targetIndex, pairOfSource, pairOfTarget, sourceLabel } = state;
  rewrites.forEach(({ from, to }, rewrite) => {
    sourceNames.forEach((name, s) => {
      // A key this rewrite paired is by construction consistent with it.
      if (pairedBy[s] === rewrite || name.length <= from.length || !name.startsWith(from)) return;
      const t = targetIndex.get(to + name.slice(from.length));
      if (t === undefined || pairOfSource[s] === t) return;
      const rival = pairOfTarget[t]!;
      const hint = ambiguityHint({ from, to });
      if (rival !== -1) {
        throw new AmbiguousKeyError(
          "AMBIGUOUS_KEY",
          `source keys '${sourceLabel(rival)}' and '${sourceLabel(s)}' ` +
            `(prefix ${describeRewrite(from, to)}) ` +
            `both match target key '${targetNames[t]}'`,
          { key: targetNames[t], hint },
        );
      }
      const paired = pairOfSource[s]!;
      if (paired === -1) return; // cannot happen: the rewrite would have paired them
      throw new AmbiguousKeyError(
        "AMBIGUOUS_KEY",
        `source key '${sourceLabel(s)}' matches both target keys '${targetNames[paired]}' ` +
          `and '${targetNames[t]}' (prefix ${describeRewrite(from, to)})`,
        { key: sourceLabel(s), hint },
      );
    });
  });
}
