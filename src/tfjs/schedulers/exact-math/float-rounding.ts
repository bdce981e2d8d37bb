/**
 * Exact conversions between float64 values and big-integer mantissas: what the correctly
 * rounded cos and pow are built on.
 */

/** A positive finite double as `mantissa * 2^exponent`, mantissa an odd integer (or 0). */
export interface SplitDouble {
  mantissa: bigint;
  exponent: number;
}

const bits = new DataView(new ArrayBuffer(8));

/** `|x|` as an odd mantissa times a power of two. `x` must be finite. */
export function splitDouble(x: number): SplitDouble {
  bits.setFloat64(0, Math.abs(x));
  const high = bits.getUint32(0);
  const low = bits.getUint32(4);
  const biased = high >>> 20;
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  let exponent: number;
  if (biased === 0) {
    exponent = -1074; // subnormal: no implicit bit
  } else {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  if (mantissa === 0n) return { mantissa, exponent: 0 };
  while ((mantissa & 1n) === 0n) {
    mantissa >>= 1n;
    exponent += 1;
  }
  return { mantissa, exponent };
}

/** Number of bits of a positive bigint. */
export function bitLength(value: bigint): number {
  return value.toString(2).length;
}

/** 2^k exactly, for k in [-1074, 1023]. */
export function powerOfTwo(k: number): number {
  // Subnormal powers are a normal power times 2^-64: the product is exact.
  if (k < -1022) return normalPowerOfTwo(k + 64) * normalPowerOfTwo(-64);
  return normalPowerOfTwo(k);
}

function normalPowerOfTwo(k: number): number {
  bits.setUint32(0, (k + 1023) << 20);
  bits.setUint32(4, 0);
  return bits.getFloat64(0);
}

/**
 * The double nearest to `mantissa * 2^exponent` (ties to even), for a positive mantissa.
 * `inexact` says the true value is a little larger than that (bits were dropped), which
 * breaks what would otherwise be a tie. Overflows to Infinity, underflows through subnormals.
 */
export function roundToDouble(mantissa: bigint, exponent: number, inexact = false): number {
  const top = bitLength(mantissa) - 1 + exponent; // exponent of the leading bit
  if (top > 1023) return Number.POSITIVE_INFINITY;
  if (top < -1076) return 0; // below half the smallest subnormal
  const ulp = Math.max(top - 52, -1074);
  const drop = ulp - exponent;
  if (drop <= 0) return Number(mantissa) * powerOfTwo(exponent);
  const kept = mantissa >> BigInt(drop);
  const rest = mantissa - (kept << BigInt(drop));
  const half = 1n << BigInt(drop - 1);
  const roundUp = rest > half || (rest === half && (inexact || (kept & 1n) === 1n));
  const rounded = kept + (roundUp ? 1n : 0n);
  // Rounding up may carry into a new leading bit: 2^53 * 2^ulp is still exact unless it overflows.
  if (ulp + bitLength(rounded) - 1 > 1023) return Number.POSITIVE_INFINITY;
  return Number(rounded) * powerOfTwo(ulp);
}
