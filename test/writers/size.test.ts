import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { parseSize, resolveSize } from "../../src/writers/size.js";

describe("parseSize", () => {
  it("reads decimal units as huggingface_hub's parse_size_to_int does", () => {
    // The cases of huggingface_hub's own test_parse_size_to_int.
    expect(parseSize("1KB")).toBe(1 * 10 ** 3);
    expect(parseSize("2MB")).toBe(2 * 10 ** 6);
    expect(parseSize("3GB")).toBe(3 * 10 ** 9);
    expect(parseSize(" 10 KB ")).toBe(10 * 10 ** 3);
    expect(parseSize("500MB")).toBe(500_000_000);
    expect(parseSize("2GB")).toBe(2_000_000_000);
    expect(parseSize("5TB")).toBe(5 * 10 ** 12);
    expect(parseSize("10kB")).toBe(10_000);
  });

  it("reads binary units as transformers' convert_file_size_to_int does", () => {
    expect(parseSize("1.5GiB")).toBe(1.5 * 2 ** 30);
    expect(parseSize("1MiB")).toBe(1_048_576);
    expect(parseSize("3KiB")).toBe(3072);
    expect(parseSize("1gib")).toBe(2 ** 30);
    expect(parseSize("2TiB")).toBe(2 * 2 ** 40);
  });

  it("reads bare numbers and B as bytes, and rounds fractions down exactly", () => {
    expect(parseSize("1048576")).toBe(1_048_576);
    expect(parseSize("100B")).toBe(100);
    expect(parseSize("1.5KB")).toBe(1500);
    expect(parseSize(".5KB")).toBe(500);
    // Python's int(4.35 * 10**6) is 4349999 (float error); 4.35 MB is 4,350,000 bytes.
    expect(parseSize("4.35MB")).toBe(4_350_000);
    // 0.0001 KiB = 0.1024 bytes: less than one byte.
    expect(() => parseSize("0.0001KiB")).toThrow(ConfigError);
    expect(parseSize("1.0009KB")).toBe(1000);
  });

  it("refuses a lowercase b, which Hugging Face's tools read as bytes or as bits", () => {
    expect(() => parseSize("20mb")).toThrow(
      expect.objectContaining({ hint: expect.stringContaining('"20MB"') }),
    );
    for (const text of ["20mb", "5Gb", "100b"]) {
      expect(() => parseSize(text)).toThrow(/unknown unit/);
      try {
        parseSize(text);
      } catch (error) {
        expect((error as ConfigError).hint).toMatch(/bits/);
      }
    }
  });

  it("refuses what is not a size", () => {
    for (const text of ["", "GB", "1ooKB", "-1GB", "1 2GB", "1e3MB", "5 XB", "0", "0GB", "1PBB"]) {
      expect(() => parseSize(text), text).toThrow(ConfigError);
    }
    // 2^53 is about 9.007 PB.
    expect(parseSize("9PB")).toBe(9 * 10 ** 15);
    expect(() => parseSize("10PB")).toThrow(/2\^53/);
    try {
      parseSize("5XB");
    } catch (error) {
      expect(error).toMatchObject({ code: "INVALID_SIZE" });
    }
  });
});

describe("resolveSize", () => {
  it("takes positive whole numbers of bytes and size strings", () => {
    expect(resolveSize(1000)).toBe(1000);
    expect(resolveSize("1KB")).toBe(1000);
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      expect(() => resolveSize(bad)).toThrow(ConfigError);
    }
  });
});
