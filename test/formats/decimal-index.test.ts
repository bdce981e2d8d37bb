import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decimalIndex, decimalIndexIn } from "../../src/formats/decimal-index.js";

/** The definition: text that String(n) gives for the n it parses to. */
const reference = (text: string, limit: number) => {
  if (!/^\d+$/.test(text)) return -1;
  const n = Number(text);
  return String(n) === text && n < limit ? n : -1;
};

describe("decimalIndex", () => {
  it("is the number String(n) would write, below the limit, and -1 for anything else", () => {
    const text = fc.oneof(
      fc.nat().map(String),
      fc.stringMatching(/^[0-9]{0,12}$/),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 1e9 }), (candidate, limit) => {
        const want = reference(candidate, limit);
        expect(decimalIndex(candidate, limit)).toBe(want);
        if ([...candidate].every((c) => c.charCodeAt(0) < 0x80)) {
          const bytes = new TextEncoder().encode(`ab${candidate}c`);
          expect(decimalIndexIn(bytes, 2, bytes.length - 1, limit)).toBe(want);
        }
      }),
    );
  });

  it.each([
    ["0", 1, 0],
    ["0", 0, -1],
    ["007", 100, -1],
    ["-1", 100, -1],
    ["1e3", 10_000, -1],
    ["", 10, -1],
    ["123456789", 1e9, 123456789],
  ])("%j below %i is %i", (text, limit, want) => {
    expect(decimalIndex(text, limit)).toBe(want);
  });
});
