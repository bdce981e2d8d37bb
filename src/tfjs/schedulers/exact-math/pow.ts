import { bitLength, roundToDouble, splitDouble } from "./float-rounding.js";

/**
 * base ** n for a whole n >= 0, correctly rounded: what Python's `gamma ** count` gives (C pow,
 * correctly rounded in glibc for all but rare hard cases). Math.pow and `**` are not: V8 gives
 * 0.9 ** 4 = 0.6561000000000001 where CPython gives 0.6561.
 *
 * Exact big-integer powers of the base's mantissa, cut to MANTISSA_BITS after each product
 * (relative error below 2^-250 per product) so a huge n costs no more than 53 products.
 */

const MANTISSA_BITS = 256;

export function correctlyRoundedPowInt(base: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`exponent ${n} is not a whole number >= 0`);
  }
  if (n === 0) return 1; // Python: x ** 0 == 1.0 for every x, NaN included
  if (!Number.isFinite(base) || base === 0) return base ** n; // exact in every engine
  const negative = base < 0 && n % 2 === 1;
  const magnitude = Math.abs(base);
  // Far past the range of doubles: Infinity or 0 (the margin covers log2's rounding).
  const log2 = n * Math.log2(magnitude);
  if (log2 > 1100) return negative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (log2 < -1100) return negative ? -0 : 0;

  const { mantissa, exponent } = splitDouble(magnitude);
  let result = { mantissa: 1n, exponent: 0 };
  let square = { mantissa, exponent };
  let inexact = false;
  const multiply = (a: typeof result, b: typeof result) => {
    let product = a.mantissa * b.mantissa;
    let shifted = a.exponent + b.exponent;
    const excess = bitLength(product) - MANTISSA_BITS;
    if (excess > 0) {
      const kept = product >> BigInt(excess);
      // The base's mantissa is odd, so its powers are odd: once cut, the value is no double
      // and no tie either, and the dropped bits only ever break ties upward.
      if (kept << BigInt(excess) !== product) inexact = true;
      product = kept;
      shifted += excess;
    }
    return { mantissa: product, exponent: shifted };
  };
  for (let rest = n; rest > 0; rest = Math.floor(rest / 2)) {
    if (rest % 2 === 1) result = multiply(result, square);
    if (rest > 1) square = multiply(square, square);
  }
  const rounded = roundToDouble(result.mantissa, result.exponent, inexact);
  return negative ? -rounded : rounded;
}
