/**
 * Indexes of state-dict keys by their dotted prefixes and suffixes, for prefix alignment:
 * "strip up to MAX_PREFIX_SEGMENTS leading segments" is the only split they know.
 */

const MAX_PREFIX_SEGMENTS = 3;
/** Prefixes counted by scanning before one pass counts them all. */
const MAX_PREFIX_SCANS = 8;

/**
 * Lengths of the prefixes of `name` that may be stripped (0, then up to 3 dotted segments
 * leaving a non-empty rest), written over `lengths`, which is returned.
 */
export function prefixLengths(name: string, lengths: number[] = []): number[] {
  lengths.length = 0;
  lengths.push(0);
  let dot = name.indexOf(".");
  while (dot !== -1 && dot + 1 < name.length && lengths.length <= MAX_PREFIX_SEGMENTS) {
    lengths.push(dot + 1);
    dot = name.indexOf(".", dot + 1);
  }
  return lengths;
}

/**
 * Keys (those not yet paired) by what is left of them after each strippable prefix. Buckets are
 * linked lists in typed arrays: tens of thousands of keys make no per-entry allocations.
 */
export interface SuffixIndex {
  /** Suffix → its first entry. */
  heads: Map<string, number>;
  /** Per entry: the key (its position in `names`), the prefix length stripped, the next entry. */
  key: Int32Array;
  prefixLength: Int32Array;
  next: Int32Array;
  /** Per first entry: how many entries its bucket has. */
  size: Int32Array;
}

export function indexBySuffix(names: readonly string[], pairOf: Int32Array): SuffixIndex {
  const capacity = (MAX_PREFIX_SEGMENTS + 1) * names.length;
  const index: SuffixIndex = {
    heads: new Map(),
    key: new Int32Array(capacity),
    prefixLength: new Int32Array(capacity),
    next: new Int32Array(capacity),
    size: new Int32Array(capacity),
  };
  const tail = new Int32Array(capacity);
  const lengths: number[] = [];
  let entries = 0;
  names.forEach((name, t) => {
    if (pairOf[t] !== -1) return;
    for (const length of prefixLengths(name, lengths)) {
      const e = entries++;
      index.key[e] = t;
      index.prefixLength[e] = length;
      index.next[e] = -1;
      const suffix = length === 0 ? name : name.slice(length);
      const head = index.heads.get(suffix);
      if (head === undefined) {
        index.heads.set(suffix, e);
        index.size[e] = 1;
        tail[e] = e;
      } else {
        index.next[tail[head]!] = e;
        tail[head] = e;
        index.size[head]!++;
      }
    }
  });
  return index;
}

/**
 * Counts unpaired keys under a prefix. A few prefixes are counted by scanning; past that, one
 * pass counts every prefix, so a round never costs more than a constant number of passes.
 */
export function prefixCounter(
  names: readonly string[],
  pairOf: Int32Array,
): (prefix: string) => number {
  const known = new Map<string, number>();
  let scans = 0;
  let everything: Map<string, number> | undefined;
  return (prefix) => {
    if (everything) return everything.get(prefix) ?? 0;
    const cached = known.get(prefix);
    if (cached !== undefined) return cached;
    if (++scans > MAX_PREFIX_SCANS) {
      everything = new Map();
      names.forEach((name, i) => {
        if (pairOf[i] !== -1) return;
        for (const length of prefixLengths(name)) {
          const under = name.slice(0, length);
          everything!.set(under, (everything!.get(under) ?? 0) + 1);
        }
      });
      return everything.get(prefix) ?? 0;
    }
    let count = 0;
    names.forEach((name, i) => {
      if (pairOf[i] === -1 && name.length > prefix.length && name.startsWith(prefix)) count++;
    });
    known.set(prefix, count);
    return count;
  };
}
