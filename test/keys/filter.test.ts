import { describe, expect, it } from "vitest";
import { filterStateDict } from "../../src/keys/filter.js";

const dict = new Map([
  ["model.encoder.0.weight", 1],
  ["model.encoder.0.bias", 2],
  ["model.decoder.0.weight", 3],
  ["model.decoder.0.bias", 4],
  ["model.decoder2.weight", 5],
  ["model.pre_processors.era5.mean", 6],
]);

describe("filterStateDict", () => {
  it("keeps everything without patterns, or with empty lists", () => {
    expect([...filterStateDict(dict).keys()]).toEqual([...dict.keys()]);
    expect([...filterStateDict(dict, { include: [], exclude: [] }).keys()]).toEqual([
      ...dict.keys(),
    ]);
  });

  it("includes by dotted prefix", () => {
    const kept = filterStateDict(dict, { include: ["model.decoder"] });
    expect([...kept]).toEqual([
      ["model.decoder.0.weight", 3],
      ["model.decoder.0.bias", 4],
    ]);
  });

  it("includes by glob", () => {
    const kept = filterStateDict(dict, { include: ["*.bias", "*.mean"] });
    expect([...kept.keys()]).toEqual([
      "model.encoder.0.bias",
      "model.decoder.0.bias",
      "model.pre_processors.era5.mean",
    ]);
  });

  it("excludes after including, keeping the dict's order", () => {
    const kept = filterStateDict(dict, {
      include: ["model.encoder", "model.decoder"],
      exclude: ["*.bias"],
    });
    expect([...kept.keys()]).toEqual(["model.encoder.0.weight", "model.decoder.0.weight"]);
  });

  it("excludes alone from everything", () => {
    const kept = filterStateDict(dict, { exclude: ["model.pre_processors", "model.decoder2"] });
    expect([...kept.keys()]).toEqual([
      "model.encoder.0.weight",
      "model.encoder.0.bias",
      "model.decoder.0.weight",
      "model.decoder.0.bias",
    ]);
  });

  it("returns a new map and leaves the input alone", () => {
    const kept = filterStateDict(dict, { exclude: ["model"] });
    expect(kept.size).toBe(0);
    expect(dict.size).toBe(6);
  });
});
