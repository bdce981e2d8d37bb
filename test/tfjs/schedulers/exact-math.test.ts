import { describe, expect, it } from "vitest";
import { correctlyRoundedCos } from "../../../src/tfjs/schedulers/exact-math/cos.js";
import {
  powerOfTwo,
  roundToDouble,
  splitDouble,
} from "../../../src/tfjs/schedulers/exact-math/float-rounding.js";
import { correctlyRoundedPowInt } from "../../../src/tfjs/schedulers/exact-math/pow.js";
import { recorded } from "./helpers.js";

/** Reference values: mpmath at 300 bits and exact fractions (record.py, "exactMath"). */
const { cos, powInt } = recorded().exactMath;

const asNumber = (value: number | string): number =>
  value === "inf"
    ? Number.POSITIVE_INFINITY
    : value === "-inf"
      ? Number.NEGATIVE_INFINITY
      : (value as number);

describe("correctlyRoundedCos", () => {
  it(`matches the correctly rounded cosine at ${cos.length} arguments`, () => {
    const wrong = cos.filter(([x, expected]) => !Object.is(correctlyRoundedCos(x), expected));
    expect(wrong).toEqual([]);
  });

  it("covers pi*k/T for small T, huge arguments and the edge of cos(x) == 1", () => {
    const args = cos.map(([x]) => x);
    expect(args).toContain((Math.PI * 6) / 5); // where fdlibm-style cos (V8) is 1 ulp off
    expect(args).toContain(2 ** 1023);
    expect(args).toContain(2 ** -27);
  });

  it("is NaN for infinities and NaN, 1 at zero", () => {
    expect(correctlyRoundedCos(Number.POSITIVE_INFINITY)).toBeNaN();
    expect(correctlyRoundedCos(Number.NEGATIVE_INFINITY)).toBeNaN();
    expect(correctlyRoundedCos(Number.NaN)).toBeNaN();
    expect(correctlyRoundedCos(0)).toBe(1);
    expect(correctlyRoundedCos(-0)).toBe(1);
    expect(correctlyRoundedCos(5e-324)).toBe(1);
  });
});

describe("correctlyRoundedPowInt", () => {
  it(`matches the exact power, correctly rounded, in ${powInt.length} cases`, () => {
    const wrong = powInt.filter(
      ([base, n, expected]) => !Object.is(correctlyRoundedPowInt(base, n), asNumber(expected)),
    );
    expect(wrong).toEqual([]);
  });

  it("follows Python for zero exponents and special bases", () => {
    expect(correctlyRoundedPowInt(Number.NaN, 0)).toBe(1);
    expect(correctlyRoundedPowInt(0, 0)).toBe(1);
    expect(correctlyRoundedPowInt(0, 3)).toBe(0);
    expect(Object.is(correctlyRoundedPowInt(-0, 3), -0)).toBe(true);
    expect(correctlyRoundedPowInt(Number.NEGATIVE_INFINITY, 3)).toBe(Number.NEGATIVE_INFINITY);
    expect(correctlyRoundedPowInt(0.5, 10_000)).toBe(0);
    expect(correctlyRoundedPowInt(-2, 10_001)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("refuses exponents that are not whole numbers >= 0", () => {
    expect(() => correctlyRoundedPowInt(0.5, -1)).toThrow(RangeError);
    expect(() => correctlyRoundedPowInt(0.5, 1.5)).toThrow(RangeError);
  });
});

describe("float rounding helpers", () => {
  it("splits doubles into odd mantissas and exponents", () => {
    expect(splitDouble(1)).toEqual({ mantissa: 1n, exponent: 0 });
    expect(splitDouble(0.75)).toEqual({ mantissa: 3n, exponent: -2 });
    expect(splitDouble(-6)).toEqual({ mantissa: 3n, exponent: 1 });
    expect(splitDouble(5e-324)).toEqual({ mantissa: 1n, exponent: -1074 });
    expect(splitDouble(Number.MAX_VALUE)).toEqual({ mantissa: 2n ** 53n - 1n, exponent: 971 });
  });

  it("makes exact powers of two down to the smallest subnormal", () => {
    expect(powerOfTwo(0)).toBe(1);
    expect(powerOfTwo(-1074)).toBe(5e-324);
    expect(powerOfTwo(-1022)).toBe(2.2250738585072014e-308);
    expect(powerOfTwo(1023)).toBe(8.98846567431158e307);
  });

  it("rounds to nearest, ties to even, inexact ties upward, through subnormals", () => {
    const m = 2n ** 53n; // 2^53 + 1 is a tie between 2^53 and 2^53 + 2
    expect(roundToDouble(m + 1n, 0)).toBe(2 ** 53);
    expect(roundToDouble(m + 3n, 0)).toBe(2 ** 53 + 4);
    expect(roundToDouble(m + 1n, 0, true)).toBe(2 ** 53 + 2);
    expect(roundToDouble(1n, -1075)).toBe(0); // half the smallest subnormal: tie to 0
    expect(roundToDouble(3n, -1076)).toBe(5e-324); // 0.75 of it
    expect(roundToDouble(2n ** 54n - 1n, 970)).toBe(Number.POSITIVE_INFINITY);
    expect(roundToDouble(2n ** 53n - 1n, 971)).toBe(Number.MAX_VALUE);
  });
});
