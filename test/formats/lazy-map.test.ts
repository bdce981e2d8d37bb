import { describe, expect, it } from "vitest";
import { LazyMap } from "../../src/formats/lazy-map.js";

describe("LazyMap", () => {
  it("builds its entries once, on the first question, and then answers as the built map", () => {
    let builds = 0;
    const lazy = new LazyMap(() => {
      builds++;
      return new Map([
        ["a", 1],
        ["b", 2],
      ]);
    });
    expect(builds).toBe(0);
    expect(lazy.get("b")).toBe(2);
    expect(lazy.has("c")).toBe(false);
    expect(lazy.size).toBe(2);
    expect([...lazy]).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
    expect([...lazy.keys()]).toEqual(["a", "b"]);
    expect([...lazy.values()]).toEqual([1, 2]);
    expect([...lazy.entries()]).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
    const seen: unknown[] = [];
    lazy.forEach(function (this: unknown, value, key, map) {
      seen.push([key, value, map === lazy, this]);
    }, "context");
    expect(seen).toEqual([
      ["a", 1, true, "context"],
      ["b", 2, true, "context"],
    ]);
    expect(builds).toBe(1);
  });
});
