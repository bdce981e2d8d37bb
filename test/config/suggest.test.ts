import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { closestMatches, damerauLevenshtein, didYouMean } from "../../src/config/suggest.js";

/**
 * Reference distance straight from the definition: the fewest insertions, deletions,
 * substitutions and adjacent transpositions turning `a` into `b`, found by breadth-first search
 * over every string on the way (small alphabets and lengths only).
 */
function editDistanceBySearch(a: string, b: string): number {
  const alphabet = [...new Set([...a, ...b])];
  const maxLength = Math.max(a.length, b.length) + 1;
  const seen = new Set([a]);
  let frontier = [a];
  for (let distance = 0; ; distance++) {
    if (frontier.includes(b)) return distance;
    const next: string[] = [];
    const visit = (s: string) => {
      if (s.length <= maxLength && !seen.has(s)) {
        seen.add(s);
        next.push(s);
      }
    };
    for (const s of frontier) {
      for (let i = 0; i <= s.length; i++) {
        for (const c of alphabet) visit(s.slice(0, i) + c + s.slice(i)); // insert
        if (i < s.length) {
          visit(s.slice(0, i) + s.slice(i + 1)); // delete
          for (const c of alphabet) visit(s.slice(0, i) + c + s.slice(i + 1)); // substitute
        }
        if (i + 1 < s.length) visit(s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2)); // transpose
      }
    }
    frontier = next;
  }
}

describe("damerauLevenshtein", () => {
  it("counts insertions, deletions, substitutions and transpositions", () => {
    expect(damerauLevenshtein("", "")).toBe(0);
    expect(damerauLevenshtein("", "abc")).toBe(3);
    expect(damerauLevenshtein("abc", "")).toBe(3);
    expect(damerauLevenshtein("kitten", "sitting")).toBe(3);
    expect(damerauLevenshtein("ab", "ba")).toBe(1);
    expect(damerauLevenshtein("warm_strat", "warm_start")).toBe(1);
    expect(damerauLevenshtein("skip_mismatch", "skip_mismatched")).toBe(2);
    expect(damerauLevenshtein("abcd", "badc")).toBe(2);
  });

  it("is the unrestricted distance: a transposed pair may be edited again", () => {
    // ca -> ac -> abc is 2; optimal string alignment (no edits inside a transposition) says 3.
    expect(damerauLevenshtein("ca", "abc")).toBe(2);
    expect(damerauLevenshtein("a cat", "an act")).toBe(2);
  });

  it("agrees with a breadth-first search over edits", () => {
    const word = fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 4 });
    fc.assert(
      fc.property(word, word, (a, b) => {
        expect(damerauLevenshtein(a, b)).toBe(editDistanceBySearch(a, b));
      }),
      { numRuns: 300 },
    );
  });

  it("is a metric (symmetric, satisfies the triangle inequality)", () => {
    const word = fc.string({ unit: fc.constantFrom("a", "b", "c", "d"), maxLength: 7 });
    fc.assert(
      fc.property(word, word, word, (a, b, c) => {
        expect(damerauLevenshtein(a, b)).toBe(damerauLevenshtein(b, a));
        expect(damerauLevenshtein(a, c)).toBeLessThanOrEqual(
          damerauLevenshtein(a, b) + damerauLevenshtein(b, c),
        );
      }),
    );
  });
});

describe("suggestions", () => {
  const strategies = ["weights_only", "transfer_learning", "warm_start", "cold_start"];

  it("suggests candidates within distance 2", () => {
    expect(closestMatches("warm_strat", strategies)).toEqual(["warm_start"]);
    expect(closestMatches("cold-start", strategies)).toEqual(["cold_start"]);
    expect(closestMatches("skip_mismatch", ["strict", "skip_mismatched", "mismatch"])).toEqual([
      "skip_mismatched",
    ]);
  });

  it("suggests candidates the input is a prefix of (3 characters or more)", () => {
    expect(closestMatches("transfer", strategies)).toEqual(["transfer_learning"]);
    expect(closestMatches("weights", strategies)).toEqual(["weights_only"]);
    expect(closestMatches("tr", strategies)).toEqual([]);
  });

  it("ignores case", () => {
    expect(closestMatches("Warm_Start", strategies)).toEqual(["warm_start"]);
  });

  it("prefers the closest and keeps ties in the candidates' order", () => {
    expect(closestMatches("mode", ["mod", "node", "modes"])).toEqual(["mod", "node", "modes"]);
    expect(closestMatches("mode", ["model", "mo"])).toEqual(["model"]);
  });

  it("suggests nothing for unrelated words or exact matches", () => {
    expect(closestMatches("banana", strategies)).toEqual([]);
    expect(closestMatches("warm_start", strategies)).toEqual([]);
    expect(didYouMean("banana", strategies)).toBe("");
    expect(didYouMean("warm_strat", strategies)).toBe("did you mean 'warm_start'? ");
  });

  it("does not call a complete rewrite a misspelling", () => {
    // "ab" -> "xy" is distance 2 but keeps nothing.
    expect(closestMatches("ab", ["xy"])).toEqual([]);
  });
});
