import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AmbiguousKeyError } from "../../src/errors.js";
import { type KeyMatch, matchStateDictKeys } from "../../src/keys/match.js";
import { keyInfo } from "./helpers.js";

const WRAPPERS = [
  "",
  "module.",
  "_orig_mod.",
  "model.",
  "model.model.",
  "model.module.",
  "module._orig_mod.",
];

/** Segments that are never wrapper names, so a wrapped key has exactly one reading. */
const plainSegment = fc.constantFrom(
  "enc",
  "dec",
  "layers",
  "0",
  "1",
  "12",
  "attn",
  "q",
  "weight",
  "bias",
);
/** Segments including the wrapper names themselves, to provoke collisions. */
const anySegment = fc.constantFrom(
  "enc",
  "0",
  "weight",
  "bias",
  "model",
  "module",
  "_orig_mod",
  "x",
);

const keysOf = (segment: fc.Arbitrary<string>, maxLength: number) =>
  fc.uniqueArray(
    fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join(".")),
    { minLength: 0, maxLength },
  );

/** Every key of each side is in exactly one of its lists, and no key is paired twice. */
function expectPartition(result: KeyMatch, source: string[], target: string[]): void {
  const pairedSources = result.pairs.map((p) => p.source);
  const pairedTargets = result.pairs.map((p) => p.target);
  expect(new Set(pairedSources).size).toBe(pairedSources.length);
  expect(new Set(pairedTargets).size).toBe(pairedTargets.length);
  expect([...pairedSources, ...result.unexpected].sort()).toEqual([...source].sort());
  expect([...pairedTargets, ...result.missing].sort()).toEqual([...target].sort());
  // Orders: pairs and missing follow the target, unexpected follows the source.
  const targetOrder = new Map(target.map((k, i) => [k, i]));
  const sourceOrder = new Map(source.map((k, i) => [k, i]));
  const increasing = (positions: number[]) =>
    positions.every((p, i) => i === 0 || p > positions[i - 1]!);
  expect(increasing(pairedTargets.map((k) => targetOrder.get(k)!))).toBe(true);
  expect(increasing(result.missing.map((k) => targetOrder.get(k)!))).toBe(true);
  expect(increasing(result.unexpected.map((k) => sourceOrder.get(k)!))).toBe(true);
  expect(result.mismatched).toEqual(result.pairs.filter((p) => !p.shapeMatches));
}

describe("matchStateDictKeys properties", () => {
  it("never pairs a key twice and accounts for every key, whatever the dicts", () => {
    fc.assert(
      fc.property(
        keysOf(anySegment, 30),
        fc.array(fc.constantFrom(...WRAPPERS), { minLength: 1, maxLength: 3 }),
        fc.array(fc.constantFrom(...WRAPPERS), { minLength: 1, maxLength: 3 }),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        (keys, sourceWrappers, targetWrappers, keep) => {
          // Each key goes under one of a few wrappers per side, and some keys are dropped.
          const source = [
            ...new Set(
              keys
                .filter((_, i) => keep[i])
                .map((k, i) => sourceWrappers[i % sourceWrappers.length] + k),
            ),
          ];
          const target = [
            ...new Set(keys.map((k, i) => targetWrappers[i % targetWrappers.length] + k)),
          ];
          const shapes = (k: string) => [k.length % 3];
          let result: KeyMatch;
          try {
            result = matchStateDictKeys(
              keyInfo(source, shapes),
              keyInfo(target, (k) => [k.length % 2]),
            );
          } catch (error) {
            // Refusing to guess is allowed; anything else is a bug.
            expect(error).toBeInstanceOf(AmbiguousKeyError);
            return;
          }
          expectPartition(result, source, target);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("recovers the identity under any change of wrapper", () => {
    fc.assert(
      fc.property(
        keysOf(plainSegment, 40).filter((keys) => keys.length > 0),
        fc.constantFrom(...WRAPPERS),
        fc.constantFrom(...WRAPPERS),
        (keys, from, to) => {
          const source = keys.map((k) => from + k);
          const target = [...keys].reverse().map((k) => to + k);
          const result = matchStateDictKeys(keyInfo(source), keyInfo(target));
          expectPartition(result, source, target);
          expect(result.missing).toEqual([]);
          expect(result.unexpected).toEqual([]);
          for (const { source: s, target: t } of result.pairs) {
            expect(s.slice(from.length)).toBe(t.slice(to.length));
          }
          expect(result.transforms.length).toBe(from === to ? 0 : 1);
          expect(result.transforms[0]?.count ?? keys.length).toBe(keys.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
