import { Buffer } from "node:buffer";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import {
  asciiText,
  isAscii,
  latin1Text,
  portableLatin1Text,
  useHostLatin1,
} from "../../src/formats/latin1.js";

/** Python's bytes.decode("latin1"), spelled out: each byte is the code point of its value. */
const reference = (bytes: Uint8Array, start: number, end: number) =>
  Array.from(bytes.subarray(start, end), (b) => String.fromCodePoint(b)).join("");

const nodeLatin1 = (bytes: Uint8Array, start: number, end: number) =>
  Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("latin1");

/** Byte arrays from `arrays`, each with a range inside it. */
const withRange = (arrays: fc.Arbitrary<Uint8Array>) =>
  arrays.chain((bytes) =>
    fc
      .tuple(fc.nat(bytes.length), fc.nat(bytes.length))
      .map(([a, b]) => ({ bytes, start: Math.min(a, b), end: Math.max(a, b) })),
  );

const bytesAndRange = withRange(fc.uint8Array({ maxLength: 10_000 }));

describe("latin1Text", () => {
  afterEach(() => useHostLatin1(undefined));

  it("decodes every byte as the code point of its value, with and without a host decoder", () => {
    fc.assert(
      fc.property(bytesAndRange, ({ bytes, start, end }) => {
        const expected = reference(bytes, start, end);
        expect(portableLatin1Text(bytes, start, end)).toBe(expected);
        useHostLatin1(nodeLatin1);
        expect(latin1Text(bytes, start, end)).toBe(expected);
        useHostLatin1(undefined);
        expect(latin1Text(bytes, start, end)).toBe(expected);
      }),
    );
  });

  it("decodes runs longer than one String.fromCharCode call takes", () => {
    const bytes = Uint8Array.from({ length: 20_000 }, (_, i) => (i * 7) & 0xff);
    expect(portableLatin1Text(bytes, 3, 19_999)).toBe(reference(bytes, 3, 19_999));
  });

  it("refuses a host decoder that decodes its sample wrongly, and keeps the portable one", () => {
    let calls = 0;
    useHostLatin1((bytes, start, end) => {
      calls++;
      // A plausible mistake: UTF-8, which reads bytes above 0x7F alone as U+FFFD.
      return new TextDecoder().decode(bytes.subarray(start, end));
    });
    expect(calls).toBe(1);
    expect(latin1Text(new Uint8Array([0x80, 0xe9]))).toBe("\u0080\u00e9");
    expect(calls).toBe(1);
  });

  it("refuses a host decoder that throws", () => {
    useHostLatin1(() => {
      throw new Error("no");
    });
    expect(latin1Text(new Uint8Array([0x41, 0xff]))).toBe("A\u00ff");
  });
});

describe("asciiText and isAscii", () => {
  afterEach(() => useHostLatin1(undefined));

  it("isAscii is true exactly when no byte is above 0x7F", () => {
    fc.assert(
      fc.property(bytesAndRange, ({ bytes, start, end }) => {
        const expected = bytes.subarray(start, end).every((b) => b < 0x80);
        expect(isAscii(bytes, start, end)).toBe(expected);
      }),
    );
  });

  it("reads ASCII runs of every length the same with and without a host decoder", () => {
    const asciiRange = withRange(
      fc
        .array(fc.integer({ min: 0, max: 0x7f }), { maxLength: 200 })
        .map((codes) => Uint8Array.from(codes)),
    );
    fc.assert(
      fc.property(asciiRange, ({ bytes, start, end }) => {
        const expected = reference(bytes, start, end);
        expect(asciiText(bytes, start, end)).toBe(expected);
        useHostLatin1(nodeLatin1);
        expect(asciiText(bytes, start, end)).toBe(expected);
        useHostLatin1(undefined);
      }),
    );
  });
});
