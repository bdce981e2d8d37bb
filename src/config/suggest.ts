/**
 * "Did you mean" for misspelt keys and values: the candidates closest to what was written by
 * Damerau-Levenshtein distance (at most 2), or those it is a prefix of.
 */

/** Longer inputs are not misspellings of a short key; this also bounds the work. */
const MAX_COMPARED_LENGTH = 64;
const MAX_DISTANCE = 2;
/** A prefix shorter than this matches too much to be a useful suggestion. */
const MIN_PREFIX_LENGTH = 3;

/**
 * Unrestricted Damerau-Levenshtein distance (Lowrance-Wagner): insertions, deletions,
 * substitutions and transpositions of adjacent characters, each costing 1, where a transposed
 * pair may also be edited further (unlike the "optimal string alignment" variant).
 */
export function damerauLevenshtein(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  const infinity = n + m;
  const width = m + 2;
  // d[(i + 1) * width + (j + 1)] is the distance between a[0, i) and b[0, j).
  const d = new Int32Array((n + 2) * width);
  const at = (i: number, j: number) => i * width + j;
  d[at(0, 0)] = infinity;
  for (let i = 0; i <= n; i++) {
    d[at(i + 1, 0)] = infinity;
    d[at(i + 1, 1)] = i;
  }
  for (let j = 0; j <= m; j++) {
    d[at(0, j + 1)] = infinity;
    d[at(1, j + 1)] = j;
  }
  // Last row (1-based) in which each character of `b` was seen in `a`.
  const lastRow = new Map<string, number>();
  for (let i = 1; i <= n; i++) {
    let lastMatchColumn = 0;
    for (let j = 1; j <= m; j++) {
      const i1 = lastRow.get(b[j - 1]!) ?? 0;
      const j1 = lastMatchColumn;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      if (cost === 0) lastMatchColumn = j;
      d[at(i + 1, j + 1)] = Math.min(
        d[at(i, j)]! + cost,
        d[at(i + 1, j)]! + 1,
        d[at(i, j + 1)]! + 1,
        d[at(i1, j1)]! + (i - i1 - 1) + 1 + (j - j1 - 1),
      );
    }
    lastRow.set(a[i - 1]!, i);
  }
  return d[at(n + 1, m + 1)]!;
}

/** How close `candidate` is to `input`: a distance, or undefined when it is no suggestion. */
function closeness(input: string, candidate: string): number | undefined {
  const a = input.toLowerCase();
  const b = candidate.toLowerCase();
  const distance = damerauLevenshtein(a, b);
  // A distance as large as the longer word means nothing was kept: not a misspelling.
  if (distance <= MAX_DISTANCE && distance < Math.max(a.length, b.length)) return distance;
  const [shorter, longer] = a.length <= b.length ? [a, b] : [b, a];
  if (shorter.length >= MIN_PREFIX_LENGTH && longer.startsWith(shorter)) return MAX_DISTANCE + 1;
  return undefined;
}

/** The candidates closest to `input` (ties kept, in the candidates' order); [] when none is close. */
export function closestMatches(input: string, candidates: readonly string[]): string[] {
  if (input.length > MAX_COMPARED_LENGTH) return [];
  let best = Number.POSITIVE_INFINITY;
  let matches: string[] = [];
  for (const candidate of candidates) {
    if (candidate === input || candidate.length > MAX_COMPARED_LENGTH) continue;
    const score = closeness(input, candidate);
    if (score === undefined || score > best) continue;
    if (score < best) {
      best = score;
      matches = [];
    }
    matches.push(candidate);
  }
  return matches;
}

/** `did you mean 'x'? ` (or `'x' or 'y'`), or '' when nothing is close. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const matches = closestMatches(input, candidates);
  if (matches.length === 0) return "";
  return `did you mean ${matches.map((m) => `'${m}'`).join(" or ")}? `;
}

/** ` (did you mean 'x'? allowed: a, b, c)`: the suggestion, then everything allowed. */
export function suggestionSuffix(
  input: string,
  allowed: readonly string[],
  label = "allowed",
): string {
  return ` (${didYouMean(input, allowed)}${label}: ${allowed.join(", ")})`;
}
