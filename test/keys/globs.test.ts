import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { compileKeyPatterns, patternsMatchingNothing } from "../../src/keys/globs.js";

const keys = [
  "decoder",
  "decoder.x.weight",
  "decoder2.weight",
  "encoder.layers.0.attn.q.weight",
  "encoder.layers.0.attn.q.bias",
  "encoder.layers.11.mlp.fc1.weight",
  "head.weight",
  "head.bias",
  "head.scale",
  "_orig_mod.norm.bias",
];

const matching = (patterns: string[]) => keys.filter(compileKeyPatterns(patterns));

describe("prefixes on TensorFlow.js names", () => {
  it("end at a '/' as well as a '.'", () => {
    const matches = compileKeyPatterns(["head", "backbone/fc"]);
    expect(matches("head/kernel")).toBe(true);
    expect(matches("head/bias")).toBe(true);
    expect(matches("backbone/fc/kernel")).toBe(true);
    expect(matches("header/kernel")).toBe(false);
    expect(matches("backbone/fc2/kernel")).toBe(false);
  });
});

describe("compileKeyPatterns", () => {
  it("treats a pattern without glob characters as a dotted prefix", () => {
    expect(matching(["decoder"])).toEqual(["decoder", "decoder.x.weight"]);
    expect(matching(["decoder.x"])).toEqual(["decoder.x.weight"]);
    expect(matching(["encoder.layers.0"])).toEqual([
      "encoder.layers.0.attn.q.weight",
      "encoder.layers.0.attn.q.bias",
    ]);
  });

  it("does not match a prefix that stops inside a segment", () => {
    expect(matching(["deco"])).toEqual([]);
    expect(matching(["encoder.layers.1"])).toEqual([]);
  });

  it("reads a trailing dot as the same prefix", () => {
    expect(matching(["decoder."])).toEqual(matching(["decoder"]));
  });

  it("lets * cross dots", () => {
    expect(matching(["*.bias"])).toEqual([
      "encoder.layers.0.attn.q.bias",
      "head.bias",
      "_orig_mod.norm.bias",
    ]);
    expect(matching(["encoder.layers.*.attn.*"])).toEqual([
      "encoder.layers.0.attn.q.weight",
      "encoder.layers.0.attn.q.bias",
    ]);
    expect(matching(["encoder.*.weight"])).toEqual([
      "encoder.layers.0.attn.q.weight",
      "encoder.layers.11.mlp.fc1.weight",
    ]);
  });

  it("matches a glob against the whole key, not a prefix", () => {
    expect(matching(["head.*"])).toEqual(["head.weight", "head.bias", "head.scale"]);
    expect(matching(["head.w*"])).toEqual(["head.weight"]);
    // ? is exactly one character: `weight` has one more than `weig`.
    expect(matching(["*.weig?"])).toEqual([]);
    expect(matching(["head.bia?"])).toEqual(["head.bias"]);
  });

  it("supports braces, ? and character classes", () => {
    expect(matching(["head.{weight,bias}"])).toEqual(["head.weight", "head.bias"]);
    expect(matching(["decoder?.weight"])).toEqual(["decoder2.weight"]);
    expect(matching(["encoder.layers.[0-9].*"])).toEqual([
      "encoder.layers.0.attn.q.weight",
      "encoder.layers.0.attn.q.bias",
    ]);
  });

  it("unions several patterns, prefixes and globs alike", () => {
    expect(matching(["decoder", "*.scale", "_orig_mod"])).toEqual([
      "decoder",
      "decoder.x.weight",
      "head.scale",
      "_orig_mod.norm.bias",
    ]);
  });

  it("matches nothing with no patterns", () => {
    expect(matching([])).toEqual([]);
  });

  it("refuses empty and negated patterns, naming what to do", () => {
    expect(() => compileKeyPatterns([""])).toThrow(ConfigError);
    expect(() => compileKeyPatterns(["..."])).toThrow(/empty/);
    const negated = (() => {
      try {
        compileKeyPatterns(["!decoder"]);
      } catch (error) {
        return error;
      }
    })();
    expect(negated).toBeInstanceOf(ConfigError);
    expect((negated as ConfigError).code).toBe("BAD_KEY_PATTERN");
    expect((negated as ConfigError).message).toMatch(/'!decoder'.*exclude/);
  });
});

describe("patternsMatchingNothing", () => {
  it("returns the patterns no key matches, in the order given", () => {
    expect(
      patternsMatchingNothing(["decoder", "decodr", "*.bias", "*.baias", "head"], keys),
    ).toEqual(["decodr", "*.baias"]);
  });

  it("returns nothing when every pattern matches", () => {
    expect(patternsMatchingNothing(["decoder", "*.weight"], keys)).toEqual([]);
  });

  it("returns every pattern when there are no keys", () => {
    expect(patternsMatchingNothing(["a", "*"], [])).toEqual(["a", "*"]);
  });
});
