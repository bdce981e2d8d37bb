import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { crc32, portableCrc32, useHostCrc32 } from "../../src/formats/zip/crc32.js";

/** The textbook algorithm, one table lookup per byte: what loadout used before slicing-by-16. */
const bytewiseTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function bytewiseCrc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const byte of bytes) c = bytewiseTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const ascii = (text: string) => new TextEncoder().encode(text);

/** `(i·31 + 7) mod 256` for i in [0, length): the pattern the large vectors below were taken on. */
function pattern(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

/** crc32 as the Node entry point sets it up: zlib's native CRC behind loadout's function. */
const hosted = (bytes: Uint8Array, crc = 0): number => {
  useHostCrc32(zlibCrc32);
  try {
    return crc32(bytes, crc);
  } finally {
    useHostCrc32(undefined);
  }
};

afterAll(() => useHostCrc32(undefined));

describe.each([
  ["portable", portableCrc32],
  ["zlib.crc32 through useHostCrc32", hosted],
])("crc32 (%s)", (_, crc32: (bytes: Uint8Array, crc?: number) => number) => {
  // Values from Python's zlib.crc32 (zlib's own check value for "123456789" is 0xCBF43926).
  it.each([
    ["", 0x00000000],
    ["a", 0xe8b7be43],
    ["abc", 0x352441c2],
    ["123456789", 0xcbf43926],
    ["message digest", 0x20159d7f],
    ["The quick brown fox jumps over the lazy dog", 0x414fa339],
  ])("matches zlib for %j", (text, expected) => {
    expect(crc32(ascii(text))).toBe(expected);
  });

  it("matches zlib on byte values, zeros and ones", () => {
    expect(crc32(Uint8Array.from({ length: 256 }, (_, i) => i))).toBe(0x29058c73);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
    expect(crc32(new Uint8Array(32).fill(0xff))).toBe(0xff6cab0b);
  });

  it("matches zlib on 1 MiB, and on an unaligned slice of it", () => {
    const bytes = pattern(1 << 20);
    expect(crc32(bytes)).toBe(0xd424bdc1);
    // Starts 3 bytes into the buffer: the head is taken a byte at a time until aligned.
    expect(crc32(bytes.subarray(3, 1_000_003))).toBe(0xfbfbecd1);
  });

  it("continues a running checksum across chunks, as zlib.crc32(data, value) does", () => {
    expect(crc32(ascii("456789"), crc32(ascii("123")))).toBe(0xcbf43926);
  });

  it("leaves a running checksum unchanged at an empty chunk", () => {
    // zlib.crc32(emptyBuffer, value) returns 0 for any value; a stream with an empty chunk
    // between two others must still get the checksum of the whole.
    const between = crc32(new Uint8Array(0), crc32(ascii("123")));
    expect(crc32(ascii("456789"), between)).toBe(0xcbf43926);
  });

  it("equals the byte-at-a-time algorithm for any bytes, offset and chunking", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (data, offset, split, initial) => {
          // Copy into a larger buffer at `offset` so every alignment of the word loop is tried.
          const buffer = new Uint8Array(data.length + offset);
          buffer.set(data, offset);
          const bytes = buffer.subarray(offset);
          const expected = bytewiseCrc32(bytes, initial);
          expect(crc32(bytes, initial)).toBe(expected);
          const cut = Math.min(split, bytes.length);
          expect(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut), initial))).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
