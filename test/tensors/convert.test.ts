import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bfloat16BitsToFloat,
  convertElements,
  floatToBfloat16Bits,
  floatToHalfBits,
  halfBitsToFloat,
  isLossy,
} from "../../src/tensors/convert.js";

describe("float16", () => {
  it("decodes IEEE 754 binary16 bit patterns", () => {
    expect(halfBitsToFloat(0x3c00)).toBe(1);
    expect(halfBitsToFloat(0xc000)).toBe(-2);
    expect(halfBitsToFloat(0x7bff)).toBe(65504); // largest normal
    expect(halfBitsToFloat(0x0400)).toBe(2 ** -14); // smallest normal
    expect(halfBitsToFloat(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(halfBitsToFloat(0x3555)).toBeCloseTo(0.333251953125, 12);
    expect(halfBitsToFloat(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(halfBitsToFloat(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(halfBitsToFloat(0x7e00))).toBe(true);
    expect(Object.is(halfBitsToFloat(0x8000), -0)).toBe(true);
  });

  it("round-trips every non-NaN bit pattern through float32", () => {
    const mismatches: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const value = halfBitsToFloat(bits);
      if (!Number.isNaN(value) && floatToHalfBits(value) !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
  });

  it("rounds to nearest, ties to even, and overflows to infinity", () => {
    // 1 + 2^-11 is exactly halfway between 1 and the next half (1 + 2^-10): ties to even (1).
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3·2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(floatToHalfBits(65520)).toBe(0x7c00); // halfway to 2^16 rounds to infinity
    expect(floatToHalfBits(65519)).toBe(0x7bff);
    expect(floatToHalfBits(2 ** -25)).toBe(0); // half the smallest subnormal, ties to even zero
    expect(floatToHalfBits(3 * 2 ** -26)).toBe(1);
    expect(floatToHalfBits(Number.NaN) & 0x7c00).toBe(0x7c00);
  });
});

describe("bfloat16", () => {
  it("decodes as the top half of a float32", () => {
    expect(bfloat16BitsToFloat(0x3f80)).toBe(1);
    expect(bfloat16BitsToFloat(0xc040)).toBe(-3);
    expect(bfloat16BitsToFloat(0x7f80)).toBe(Number.POSITIVE_INFINITY);
    expect(bfloat16BitsToFloat(0x0001)).toBe(2 ** -133);
  });

  it("round-trips every non-NaN bit pattern", () => {
    const mismatches: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const value = bfloat16BitsToFloat(bits);
      if (!Number.isNaN(value) && floatToBfloat16Bits(value) !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
  });

  it("rounds to nearest even like c10::BFloat16", () => {
    expect(floatToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(floatToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(floatToBfloat16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(floatToBfloat16Bits(Number.NaN)).toBe(0x7fc0);
  });
});

describe("convertElements", () => {
  it("widens bfloat16 and float16 to float32 exactly", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 64 }), (bits) => {
        const source = Uint16Array.from(bits);
        const fromBf16 = new Float32Array(bits.length);
        const fromHalf = new Float32Array(bits.length);
        convertElements(source, "bfloat16", fromBf16, "float32");
        convertElements(source, "float16", fromHalf, "float32");
        bits.forEach((b, i) => {
          expect(Object.is(fromBf16[i], Math.fround(bfloat16BitsToFloat(b)))).toBe(true);
          expect(Object.is(fromHalf[i], Math.fround(halfBitsToFloat(b)))).toBe(true);
        });
      }),
    );
  });

  it("truncates floats toward zero into integers, as torch's .to(int) does", () => {
    const out = new Int32Array(4);
    convertElements(Float32Array.from([1.9, -1.9, 0.5, -0.5]), "float32", out, "int32");
    expect([...out]).toEqual([1, -1, 0, 0]);
    const big = new BigInt64Array(2);
    convertElements(Float64Array.from([2 ** 40 + 0.5, -3.7]), "float64", big, "int64");
    expect([...big]).toEqual([2n ** 40n, -3n]);
  });

  it("converts int64 to float32 and anything to bool", () => {
    const f = new Float32Array(2);
    convertElements(BigInt64Array.from([-5n, 2n ** 24n + 1n]), "int64", f, "float32");
    expect([...f]).toEqual([-5, 2 ** 24]); // 2^24 + 1 rounds to 2^24 in float32
    const b = new Uint8Array(3);
    convertElements(Float32Array.from([0, -0.0, 0.1]), "float32", b, "bool");
    expect([...b]).toEqual([0, 0, 1]);
  });

  it("narrows float64 to bfloat16 through float32, as c10 does", () => {
    const out = new Uint16Array(1);
    convertElements(Float64Array.from([1.00390625]), "float64", out, "bfloat16");
    expect(out[0]).toBe(0x3f80);
  });

  it("refuses conversions of raw formats", () => {
    expect(() =>
      convertElements(new Uint8Array(1), "float8_e4m3fn", new Float32Array(1), "float32"),
    ).toThrow(/cannot convert float8_e4m3fn to float32/);
  });

  it("knows which conversions can change values", () => {
    expect(isLossy("bfloat16", "float32")).toBe(false);
    expect(isLossy("float16", "float32")).toBe(false);
    expect(isLossy("float32", "float64")).toBe(false);
    expect(isLossy("float64", "float32")).toBe(true);
    expect(isLossy("float16", "bfloat16")).toBe(true);
    expect(isLossy("int64", "float32")).toBe(true);
    expect(isLossy("int16", "float32")).toBe(false);
    expect(isLossy("float32", "int32")).toBe(true);
    expect(isLossy("bool", "float16")).toBe(false);
  });
});
