import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemorySource } from "../../src/io/byte-source.js";
import { convertElements } from "../../src/tensors/convert.js";
import { allocate, bytesOf, type DType, dtypeInfo } from "../../src/tensors/dtype.js";
import { swapBytes, Tensor } from "../../src/tensors/tensor.js";

/** float32 from bfloat16 bits by arithmetic: the bits shifted up 16 (what torch does). */
function bfloat16Reference(bits: Uint16Array): number[] {
  const view = new DataView(new ArrayBuffer(4));
  return [...bits].map((b) => {
    view.setUint32(0, b << 16, true);
    return view.getFloat32(0, true);
  });
}

/** Same numbers, NaN equal to NaN (NaN payloads are not compared: they are floats' business). */
function sameNumbers(actual: ArrayLike<number | bigint>, expected: ArrayLike<number | bigint>) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (typeof a === "number" && Number.isNaN(a))
      expect(Number.isNaN(e as number), `at ${i}`).toBe(true);
    else expect(a, `at ${i}`).toBe(e);
  }
}

function tensorOver(
  bytes: Uint8Array,
  dtype: DType,
  count: number,
  offset: number,
  bigEndian: boolean,
) {
  const source = new MemorySource(bytes, "widening.pt");
  return new Tensor({
    storage: { source, dtype, bigEndian },
    shape: [count],
    storageOffset: offset,
  });
}

describe("bfloat16 → float32", () => {
  it("equals the bits shifted up 16, for any length and alignment", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 67 }),
        fc.integer({ min: 0, max: 3 }),
        async (values, offset) => {
          const bits = Uint16Array.from(values);
          const expected = bfloat16Reference(bits);
          // convertElements on its own, input starting 2 bytes into its buffer when offset is odd.
          const padded = new Uint16Array(bits.length + offset);
          padded.set(bits, offset);
          const out = new Float32Array(bits.length);
          convertElements(padded.subarray(offset), "bfloat16", out, "float32");
          sameNumbers(out, expected);
          // Through readInto: the file's bytes expanded inside the destination.
          const file = new Uint8Array(padded.buffer);
          const tensor = tensorOver(file, "bfloat16", bits.length, offset, false);
          const destination = new Float32Array(bits.length).fill(-1);
          await tensor.readInto(destination, { dtype: "float32" });
          sameNumbers(destination, expected);
        },
      ),
    );
  });
});

/** Every pair of numeric dtypes where the target is at least as wide as the source. */
const NUMERIC: DType[] = [
  "bool",
  "uint8",
  "int8",
  "int16",
  "uint16",
  "float16",
  "bfloat16",
  "int32",
  "uint32",
  "float32",
  "int64",
  "uint64",
  "float64",
];
const widening = NUMERIC.flatMap((from) =>
  NUMERIC.filter((to) => to !== from && dtypeInfo(to).bits >= dtypeInfo(from).bits).map(
    (to) => [from, to] as const,
  ),
);

/** Element i's value: 0/1 alternating for bool, else 1 to 7; small integers, exact in every dtype. */
const valueAt = (dtype: DType, i: number) => (dtype === "bool" ? i % 2 : (i % 7) + 1);

/** 1.0 to 7.0 as IEEE half and as bfloat16 bits (sign 0, biased exponent, leading mantissa bits). */
const HALF_BITS = [0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700];
const BFLOAT16_BITS = [0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0, 0x40e0];

/** `count` elements of `dtype` holding valueAt(source, i): what the converted array must hold. */
function elements(dtype: DType, count: number, source: DType): ReturnType<typeof allocate> {
  const values = allocate(dtype, count);
  for (let i = 0; i < count; i++) {
    const v = valueAt(source, i);
    if (values instanceof BigInt64Array || values instanceof BigUint64Array) values[i] = BigInt(v);
    else if (dtype === "bool") values[i] = v === 0 ? 0 : 1;
    else if (dtype === "float16") values[i] = v === 0 ? 0 : HALF_BITS[v - 1]!;
    else if (dtype === "bfloat16") values[i] = v === 0 ? 0 : BFLOAT16_BITS[v - 1]!;
    else (values as Float64Array)[i] = v;
  }
  return values;
}

describe("readInto widening in place", () => {
  it.each(widening)(
    "%s → %s gives the same numbers, little- and big-endian, at a storage offset",
    async (from, to) => {
      const count = 11;
      const bytes = bytesOf(elements(from, count, from));
      const expected = elements(to, count, from);
      for (const bigEndian of [false, true]) {
        const stored = bytes.slice();
        const size = dtypeInfo(from).bits / 8;
        if (bigEndian) swapBytes(stored, size);
        // Two elements of padding before the tensor: a storage offset.
        const file = new Uint8Array(stored.byteLength + 2 * size);
        file.set(stored, 2 * size);
        const tensor = tensorOver(file, from, count, 2, bigEndian);
        const destination = allocate(to, count);
        await tensor.readInto(destination, { dtype: to });
        sameNumbers(destination, expected);
      }
    },
  );
});
