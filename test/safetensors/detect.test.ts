import { describe, expect, it } from "vitest";
import { looksLikeSafetensors, looksLikeShardIndex } from "../../src/formats/safetensors/detect.js";
import { safetensorsFile } from "./build.js";
import { fixtureSource } from "./fixtures.js";

const ascii = (text: string) => new TextEncoder().encode(text);

async function firstBytes(name: string, count = 4096) {
  const source = fixtureSource(name);
  return { first: await source.read(0, Math.min(count, source.size)), size: source.size };
}

describe("looksLikeSafetensors", () => {
  it("recognises real safetensors files from their first bytes", async () => {
    for (const name of [
      "basic.safetensors",
      "edge.safetensors",
      "sharded/model-00001-of-00002.safetensors",
    ]) {
      const { first, size } = await firstBytes(name);
      expect(looksLikeSafetensors(first, size), name).toBe(true);
      // Nine bytes (length + '{') are enough.
      expect(looksLikeSafetensors(first.subarray(0, 9), size), name).toBe(true);
    }
  });

  it("skips JSON whitespace before the '{'", () => {
    const file = safetensorsFile(" \t\r\n{}");
    expect(looksLikeSafetensors(file, file.length)).toBe(true);
  });

  it("checks the length against the limit and the file size", () => {
    const file = safetensorsFile("{}");
    expect(looksLikeSafetensors(file, file.length)).toBe(true);
    // 8 + n must fit in the file.
    expect(looksLikeSafetensors(file, file.length - 1)).toBe(false);
    const atLimit = safetensorsFile("{}", { declaredLength: 100_000_000n });
    expect(looksLikeSafetensors(atLimit, 100_000_008)).toBe(true);
    expect(looksLikeSafetensors(atLimit, 100_000_007)).toBe(false);
    const over = safetensorsFile("{}", { declaredLength: 100_000_001n });
    expect(looksLikeSafetensors(over, 200_000_000)).toBe(false);
    const huge = safetensorsFile("{}", { declaredLength: 2n ** 64n - 1n });
    expect(looksLikeSafetensors(huge, Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it("refuses other content", () => {
    const notBrace = safetensorsFile('["x"]');
    expect(looksLikeSafetensors(notBrace, notBrace.length)).toBe(false);
    const empty = safetensorsFile("");
    expect(looksLikeSafetensors(empty, empty.length)).toBe(false);
    const blank = safetensorsFile("    ");
    expect(looksLikeSafetensors(blank, blank.length)).toBe(false);
    expect(
      looksLikeSafetensors(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0x7b]), 1000),
    ).toBe(false);
    expect(looksLikeSafetensors(new Uint8Array([0x80, 0x02, 0x7d]), 3)).toBe(false);
    expect(looksLikeSafetensors(new Uint8Array(8), 8)).toBe(false);
    // The '{' must be inside the n header bytes.
    const short = safetensorsFile("  ", { data: ascii("{}") });
    expect(looksLikeSafetensors(short, short.length)).toBe(false);
  });
});

describe("looksLikeShardIndex", () => {
  it("recognises the generated index", async () => {
    const { first } = await firstBytes("sharded/model.safetensors.index.json");
    expect(looksLikeShardIndex(first)).toBe(true);
  });

  it("needs a leading '{' and the word weight_map within the bytes given", () => {
    expect(looksLikeShardIndex(ascii('\n  {"weight_map": {}}'))).toBe(true);
    expect(looksLikeShardIndex(ascii('{"metadata": {"total_size": 1}, "weight_map"'))).toBe(true);
    expect(looksLikeShardIndex(ascii('{"metadata": {"total_size": 1}, "weight_ma'))).toBe(false);
    expect(looksLikeShardIndex(ascii('["weight_map"]'))).toBe(false);
    expect(looksLikeShardIndex(ascii('x{"weight_map":{}}'))).toBe(false);
    expect(looksLikeShardIndex(ascii('\ufeff{"weight_map":{}}'))).toBe(false);
    expect(looksLikeShardIndex(ascii('{"tensors":{}}'))).toBe(false);
    expect(looksLikeShardIndex(new Uint8Array(0))).toBe(false);
  });
});
