import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { checkEntryName, decodeEntryName } from "../../src/formats/zip/names.js";

/** The rules as first written (regular expression, split on "/"): the reference for the fast checks. */
function referenceProblem(name: string): string | undefined {
  if (name.length === 0) return "BAD_ENTRY_NAME";
  if (name.includes("\0")) return "NUL_IN_NAME";
  if (name.includes("\\")) return "BACKSLASH_IN_NAME";
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) return "ABSOLUTE_ENTRY_NAME";
  if (name.split("/").includes("..")) return "PARENT_SEGMENT_IN_NAME";
  return undefined;
}

function problemOf(name: string): string | undefined {
  try {
    checkEntryName(name, { file: "test.zip" });
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ArchiveError);
    return (error as ArchiveError).code;
  }
}

describe("zip entry names", () => {
  it.each([
    ["..", "PARENT_SEGMENT_IN_NAME"],
    ["a/..", "PARENT_SEGMENT_IN_NAME"],
    ["a/../b", "PARENT_SEGMENT_IN_NAME"],
    ["a/.../b", undefined],
    ["a/..b/c", undefined],
    ["a/b../c", undefined],
    ["...", undefined],
    ["z:", "ABSOLUTE_ENTRY_NAME"],
    ["1:/x", undefined],
    ["@:/x", undefined],
    ["archive/data/0", undefined],
  ])("checks %j", (name, expected) => {
    expect(problemOf(name)).toBe(expected);
    expect(referenceProblem(name)).toBe(expected);
  });

  it("refuses exactly what the reference rules refuse", () => {
    const alphabet = fc.constantFrom("/", ".", "a", "Z", ":", "\\", "\0", "@", "[", "`", "{");
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 12 }), (chars) => {
        const name = chars.join("");
        expect(problemOf(name)).toBe(referenceProblem(name));
      }),
      { numRuns: 2000 },
    );
  });

  it("decodes CP437 names: ASCII as itself, high bytes by the code page", () => {
    // cp437: 0x82 é, 0x81 ü, 0xE1 ß, 0xFF no-break space (Python: bytes.decode("cp437")).
    const where = { file: "test.zip" };
    expect(decodeEntryName(new Uint8Array([0x63, 0x61, 0x66, 0x82]), false, where)).toBe("café");
    expect(decodeEntryName(new Uint8Array([0x81, 0xe1, 0xff]), false, where)).toBe("üß\u00a0");
    const long = `archive/${"x".repeat(10_000)}`;
    expect(decodeEntryName(new TextEncoder().encode(long), false, where)).toBe(long);
    const bytes = Uint8Array.from({ length: 128 }, (_, i) => i);
    expect(decodeEntryName(bytes, false, where)).toBe(String.fromCharCode(...bytes));
  });

  it("decodes names flagged UTF-8 as UTF-8, ASCII ones included, and refuses invalid UTF-8", () => {
    const where = { file: "test.zip" };
    const encode = (text: string) => new TextEncoder().encode(text);
    expect(decodeEntryName(encode("archive/data/12"), true, where)).toBe("archive/data/12");
    expect(decodeEntryName(encode("naïve/ü"), true, where)).toBe("naïve/ü");
    const long = `a/${"é".repeat(3000)}/${"z".repeat(5000)}`;
    expect(decodeEntryName(encode(long), true, where)).toBe(long);
    expect(() => decodeEntryName(new Uint8Array([0x61, 0xc3]), true, where)).toThrow(
      expect.objectContaining({ code: "BAD_ENTRY_NAME" }),
    );
  });
});
