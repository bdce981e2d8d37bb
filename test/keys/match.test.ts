import { describe, expect, it } from "vitest";
import { AmbiguousKeyError, ConfigError } from "../../src/errors.js";
import { type KeyInfo, type KeyMatch, matchStateDictKeys } from "../../src/keys/match.js";
import { keyInfo, wrappedKeys } from "./helpers.js";

/** The error `run` throws (failing the test if it throws none). */
function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}

function identityPairs(prefixFrom: string, prefixTo: string, keys: Iterable<string>) {
  return [...keys].map((key) => ({
    source: prefixFrom + key,
    target: prefixTo + key,
    shapeMatches: true,
  }));
}

const fixture = wrappedKeys();
const bare = fixture.bare!;
/** Prefix each fixture wrapper puts in front of the bare network's keys. */
const wrappers: Record<string, string> = {
  data_parallel: "module.",
  compiled: "_orig_mod.",
  lightning: "model.",
  lightning_data_parallel: "model.module.",
  data_parallel_compiled: "module._orig_mod.",
};

describe("matchStateDictKeys: exact names", () => {
  it("pairs equal names and uses no rewrite", () => {
    const result = matchStateDictKeys(bare, bare);
    expect(result.pairs).toEqual(identityPairs("", "", bare.keys()));
    expect(result).toMatchObject({
      missing: [],
      unexpected: [],
      mismatched: [],
      transforms: [],
      renamed: [],
    });
  });

  it("reports both sides' leftovers in their own order", () => {
    const source = keyInfo(["c", "x", "a", "y"]);
    const target = keyInfo(["a", "z", "b", "c"]);
    const result = matchStateDictKeys(source, target);
    expect(result.pairs.map((p) => p.target)).toEqual(["a", "c"]);
    expect(result.missing).toEqual(["z", "b"]);
    expect(result.unexpected).toEqual(["x", "y"]);
  });

  it("pairs by name regardless of dtype", () => {
    const source = new Map<string, KeyInfo>([["w", { shape: [2], dtype: "float16" }]]);
    const target = new Map<string, KeyInfo>([["w", { shape: [2], dtype: "float32" }]]);
    expect(matchStateDictKeys(source, target).pairs).toEqual([
      { source: "w", target: "w", shapeMatches: true },
    ]);
  });

  it("handles empty dicts", () => {
    expect(matchStateDictKeys(new Map(), bare).missing).toEqual([...bare.keys()]);
    expect(matchStateDictKeys(bare, new Map()).unexpected).toEqual([...bare.keys()]);
  });
});

describe("matchStateDictKeys: wrapper prefixes (keys as PyTorch names them)", () => {
  for (const [name, prefix] of Object.entries(wrappers)) {
    it(`strips ${name}'s '${prefix}'`, () => {
      const result = matchStateDictKeys(fixture[name]!, bare);
      expect(result.pairs).toEqual(identityPairs(prefix, "", bare.keys()));
      expect(result.transforms).toEqual([{ from: prefix, to: "", count: bare.size }]);
      expect(result).toMatchObject({ missing: [], unexpected: [], mismatched: [] });
    });

    it(`adds ${name}'s '${prefix}'`, () => {
      const result = matchStateDictKeys(bare, fixture[name]!);
      expect(result.pairs).toEqual(identityPairs("", prefix, bare.keys()));
      expect(result.transforms).toEqual([{ from: "", to: prefix, count: bare.size }]);
      expect(result).toMatchObject({ missing: [], unexpected: [], mismatched: [] });
    });
  }

  it("swaps one wrapper for another (DataParallel checkpoint into a compiled model)", () => {
    const result = matchStateDictKeys(fixture.data_parallel!, fixture.compiled!);
    expect(result.pairs).toEqual(identityPairs("module.", "_orig_mod.", bare.keys()));
    expect(result.transforms).toEqual([{ from: "module.", to: "_orig_mod.", count: bare.size }]);
  });

  it("strips only Lightning's 'model.' from Lightning + DataParallel into a DataParallel model", () => {
    // `model.` → `` and `model.module.` → `module.` pair the same keys: the shorter is reported.
    const result = matchStateDictKeys(fixture.lightning_data_parallel!, fixture.data_parallel!);
    expect(result.pairs).toEqual(identityPairs("model.module.", "module.", bare.keys()));
    expect(result.transforms).toEqual([{ from: "model.", to: "", count: bare.size }]);
  });

  it("adds 'model.' to a bare network next to keys that already match exactly", () => {
    // An anemoi model interface: `model.` + network, and `pre_processors.` at its own level.
    const source = new Map([...bare, ...[...fixture.anemoi_interface!].slice(-2)]);
    const result = matchStateDictKeys(source, fixture.anemoi_interface!);
    expect(result.transforms).toEqual([{ from: "", to: "model.", count: bare.size }]);
    expect(result.pairs.slice(-2)).toEqual(
      identityPairs("", "", ["pre_processors.era5.mean", "pre_processors.era5.stdev"]),
    );
    expect(result).toMatchObject({ missing: [], unexpected: [] });
  });
});

describe("matchStateDictKeys: anemoi checkpoints", () => {
  const lightning = fixture.anemoi_lightning!;

  it("loads an anemoi Lightning checkpoint's 'model.model.' network into the bare network", () => {
    const result = matchStateDictKeys(lightning, bare);
    expect(result.pairs).toEqual(identityPairs("model.model.", "", bare.keys()));
    expect(result.transforms).toEqual([{ from: "model.model.", to: "", count: bare.size }]);
    expect(result.unexpected).toEqual([
      "model.pre_processors.era5.mean",
      "model.pre_processors.era5.stdev",
    ]);
    expect(result.missing).toEqual([]);
  });

  it("loads a bare network into an anemoi Lightning module", () => {
    const result = matchStateDictKeys(bare, lightning);
    expect(result.pairs).toEqual(identityPairs("", "model.model.", bare.keys()));
    expect(result.missing).toEqual([
      "model.pre_processors.era5.mean",
      "model.pre_processors.era5.stdev",
    ]);
  });

  it("loads an anemoi Lightning checkpoint into the model interface with one rewrite", () => {
    const result = matchStateDictKeys(lightning, fixture.anemoi_interface!);
    expect(result.transforms).toEqual([{ from: "model.", to: "", count: lightning.size }]);
    expect(result.pairs).toEqual(identityPairs("model.", "", fixture.anemoi_interface!.keys()));
  });
});

describe("matchStateDictKeys: shapes", () => {
  it("keeps a pair whose shapes differ and lists it in mismatched", () => {
    const source = keyInfo(["module.head.weight", "module.head.bias", "module.body.weight"], (k) =>
      k.includes("head") ? [10, 4] : [4],
    );
    const target = keyInfo(["body.weight", "head.weight", "head.bias"], (k) =>
      k.includes("head") ? [3, 4] : [4],
    );
    const result = matchStateDictKeys(source, target);
    const head = (p: string) => ({ source: `module.head.${p}`, target: `head.${p}` });
    expect(result.pairs).toEqual([
      { source: "module.body.weight", target: "body.weight", shapeMatches: true },
      { ...head("weight"), shapeMatches: false },
      { ...head("bias"), shapeMatches: false },
    ]);
    expect(result.mismatched).toEqual([
      { ...head("weight"), shapeMatches: false },
      { ...head("bias"), shapeMatches: false },
    ]);
  });

  it("tells a 0-d tensor from a 1-element one", () => {
    const source = new Map<string, KeyInfo>([["step", { shape: [], dtype: "int64" }]]);
    const target = new Map<string, KeyInfo>([["step", { shape: [1], dtype: "int64" }]]);
    expect(matchStateDictKeys(source, target).mismatched).toHaveLength(1);
  });
});

describe("matchStateDictKeys: renames", () => {
  it("renames a whole module when every key of it moves together", () => {
    const source = keyInfo(["enc.a.weight", "enc.a.bias", "enc.b.weight", "head.weight"]);
    const target = keyInfo([
      "backbone.a.weight",
      "backbone.a.bias",
      "backbone.b.weight",
      "head.weight",
    ]);
    const result = matchStateDictKeys(source, target);
    expect(result.transforms).toEqual([{ from: "enc.", to: "backbone.", count: 3 }]);
    expect(result.pairs.map((p) => p.source)).toEqual([
      "enc.a.weight",
      "enc.a.bias",
      "enc.b.weight",
      "head.weight",
    ]);
  });

  it("does not rename a key because its last name happens to coincide", () => {
    const source = keyInfo(["enc.w", "enc.b", "head.weight", "head.bias", "head.scale"]);
    const target = keyInfo(["enc.w", "enc.b", "classifier.weight", "out.bias"]);
    const result = matchStateDictKeys(source, target);
    expect(result.transforms).toEqual([]);
    expect(result.unexpected).toEqual(["head.weight", "head.bias", "head.scale"]);
    expect(result.missing).toEqual(["classifier.weight", "out.bias"]);
  });

  it("does not rename a stray two-key module in a large dict (below 1% of the keys)", () => {
    const shared = Array.from({ length: 1000 }, (_, i) => `layers.${i}.weight`);
    const source = keyInfo([...shared, "aux.weight", "aux.bias"]);
    const target = keyInfo([...shared, "proj.weight", "proj.bias"]);
    const result = matchStateDictKeys(source, target);
    expect(result.transforms).toEqual([]);
    expect(result.unexpected).toEqual(["aux.weight", "aux.bias"]);
    expect(result.missing).toEqual(["proj.weight", "proj.bias"]);
  });

  it("prefers a wrapper rewrite even for a single key", () => {
    const result = matchStateDictKeys(keyInfo(["module.w"]), keyInfo(["w"]));
    expect(result.transforms).toEqual([{ from: "module.", to: "", count: 1 }]);
  });
});

describe("matchStateDictKeys: key_map", () => {
  it("applies rules in order before matching and reports what they renamed", () => {
    const source = keyInfo(["encoder.blocks.0.w", "encoder.blocks.1.w", "head.w"]);
    const target = keyInfo(["backbone.layers.0.w", "backbone.layers.1.w", "classifier.w"]);
    const result = matchStateDictKeys(source, target, {
      keyMap: [
        { pattern: "^encoder\\.", replacement: "backbone." },
        { pattern: "\\.blocks\\.(\\d+)\\.", replacement: ".layers.$1." },
        { pattern: "^head\\.", replacement: "classifier." },
      ],
    });
    expect(result.renamed).toEqual([
      { source: "encoder.blocks.0.w", renamedTo: "backbone.layers.0.w" },
      { source: "encoder.blocks.1.w", renamedTo: "backbone.layers.1.w" },
      { source: "head.w", renamedTo: "classifier.w" },
    ]);
    expect(result.pairs).toEqual([
      { source: "encoder.blocks.0.w", target: "backbone.layers.0.w", shapeMatches: true },
      { source: "encoder.blocks.1.w", target: "backbone.layers.1.w", shapeMatches: true },
      { source: "head.w", target: "classifier.w", shapeMatches: true },
    ]);
    expect(result.transforms).toEqual([]);
  });

  it("still aligns wrapper prefixes after renaming", () => {
    const source = keyInfo(["module.enc.w", "module.enc.b", "module.old_head.w"]);
    const target = keyInfo(["enc.w", "enc.b", "head.w"]);
    const result = matchStateDictKeys(source, target, {
      keyMap: [{ pattern: "old_head", replacement: "head" }],
    });
    expect(result.transforms).toEqual([{ from: "module.", to: "", count: 3 }]);
    expect(result.pairs.map((p) => p.source)).toEqual([
      "module.enc.w",
      "module.enc.b",
      "module.old_head.w",
    ]);
  });

  it("refuses a rename that makes two source keys collide, naming both", () => {
    const source = keyInfo(["a.x", "b.x", "c.y"]);
    const error = thrown(() =>
      matchStateDictKeys(source, keyInfo(["x"]), {
        keyMap: [{ pattern: "^[ab]\\.", replacement: "" }],
      }),
    );
    expect(error).toBeInstanceOf(AmbiguousKeyError);
    expect((error as AmbiguousKeyError).code).toBe("KEY_MAP_COLLISION");
    expect(error.message).toContain("'a.x'");
    expect(error.message).toContain("'b.x'");
  });

  it("refuses a rename onto another key's unchanged name", () => {
    const error = thrown(() =>
      matchStateDictKeys(keyInfo(["x", "module.x"]), keyInfo(["x"]), {
        keyMap: [{ pattern: "^module\\.", replacement: "" }],
      }),
    );
    expect(error).toBeInstanceOf(AmbiguousKeyError);
    expect(error.message).toMatch(/'x' and 'module\.x'/);
  });

  it("refuses an invalid regular expression with the rule's position", () => {
    const error = thrown(() =>
      matchStateDictKeys(keyInfo(["x"]), keyInfo(["x"]), {
        keyMap: [
          { pattern: "^ok", replacement: "" },
          { pattern: "(", replacement: "" },
        ],
      }),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("BAD_KEY_MAP");
    expect(error.message).toContain("rule 1");
  });
});

describe("matchStateDictKeys: ambiguity", () => {
  function ambiguity(source: string[], target: string[]): AmbiguousKeyError {
    const error = thrown(() => matchStateDictKeys(keyInfo(source), keyInfo(target)));
    expect(error).toBeInstanceOf(AmbiguousKeyError);
    expect((error as AmbiguousKeyError).code).toBe("AMBIGUOUS_KEY");
    expect(error.message).toMatch(/key_map/);
    return error as AmbiguousKeyError;
  }

  it("refuses two source keys under different wrappers for one target", () => {
    const error = ambiguity(["module.enc.w", "_orig_mod.enc.w"], ["enc.w"]);
    expect(error.message).toContain("'module.enc.w'");
    expect(error.message).toContain("'_orig_mod.enc.w'");
    expect(error.message).toContain("'enc.w'");
  });

  it("refuses one source key that two rewrites send to two targets", () => {
    const error = ambiguity(["model.a.w"], ["a.w", "model.model.a.w"]);
    expect(error.message).toContain("'a.w'");
    expect(error.message).toContain("'model.model.a.w'");
  });

  it("refuses a checkpoint holding both the model and its EMA copy for a bare model", () => {
    const keys = ["enc.w", "enc.b", "dec.w", "dec.b"];
    const error = ambiguity(
      [...keys.map((k) => `model.${k}`), ...keys.map((k) => `ema_model.${k}`)],
      keys,
    );
    expect(error.message).toContain("'model.enc.w'");
    expect(error.message).toContain("'ema_model.enc.w'");
  });

  it("loads the model, not its EMA copy, when the names match exactly", () => {
    const keys = ["model.enc.w", "model.enc.b"];
    const result = matchStateDictKeys(
      keyInfo([...keys, "ema_model.enc.w", "ema_model.enc.b"]),
      keyInfo(keys),
    );
    expect(result.pairs.map((p) => p.source)).toEqual(keys);
    expect(result.unexpected).toEqual(["ema_model.enc.w", "ema_model.enc.b"]);
  });

  it("refuses a key that matches exactly while its wrapped twin matches under the chosen rewrite", () => {
    const error = ambiguity(
      ["x.w", "module.x.w", "module.y.w", "module.z.w"],
      ["x.w", "y.w", "z.w"],
    );
    expect(error.message).toContain("'x.w' and 'module.x.w'");
  });

  it("accepts the same key pairing reached by equivalent rewrites", () => {
    // `model.` → `` and `model.model.` → `model.` pair model.model.x with model.x alike.
    const result = matchStateDictKeys(keyInfo(["model.model.x"]), keyInfo(["model.x"]));
    expect(result.transforms).toEqual([{ from: "model.", to: "", count: 1 }]);
  });

  it("is resolved by a key_map rule that says which wrapper is meant", () => {
    const result = matchStateDictKeys(
      keyInfo(["module.enc.w", "_orig_mod.enc.w"]),
      keyInfo(["enc.w"]),
      {
        keyMap: [{ pattern: "^module\\.", replacement: "" }],
      },
    );
    expect(result.pairs).toEqual([{ source: "module.enc.w", target: "enc.w", shapeMatches: true }]);
    expect(result.unexpected).toEqual(["_orig_mod.enc.w"]);
  });
});

describe("matchStateDictKeys: 20,000 keys", () => {
  const parts = ["q", "k", "v", "o", "fc1", "fc2", "ln1", "ln2", "gate", "up"];
  const layerKeys = (layer: number) =>
    parts.flatMap((part) => [`layers.${layer}.${part}.weight`, `layers.${layer}.${part}.bias`]);
  const network = Array.from({ length: 1000 }, (_, layer) => layerKeys(layer)).flat();

  it("pairs a DataParallel checkpoint with a Lightning module, reporting the differences", () => {
    const source = keyInfo(
      network.map((k) => `module.${k}`),
      (k) => (k.startsWith("module.layers.7.q.") ? [16, 8] : [8, 8]),
    );
    const targetKeys = network.filter((k) => !k.startsWith("layers.500."));
    const target = keyInfo(
      [...targetKeys.map((k) => `model.${k}`), "model.head.weight", "model.head.bias"],
      () => [8, 8],
    );
    const result: KeyMatch = matchStateDictKeys(source, target);
    expect(source.size).toBe(20_000);
    expect(result.transforms).toEqual([{ from: "module.", to: "model.", count: 19_980 }]);
    expect(result.pairs).toHaveLength(19_980);
    expect(result.pairs[12_345]).toEqual({
      source: `module.${targetKeys[12_345]}`,
      target: `model.${targetKeys[12_345]}`,
      shapeMatches: true,
    });
    expect(result.unexpected).toEqual(layerKeys(500).map((k) => `module.${k}`));
    expect(result.missing).toEqual(["model.head.weight", "model.head.bias"]);
    expect(result.mismatched.map((p) => p.target)).toEqual([
      "model.layers.7.q.weight",
      "model.layers.7.q.bias",
    ]);
  });

  it("renames a whole backbone", () => {
    const source = keyInfo(network.map((k) => `encoder.${k}`));
    const target = keyInfo(network.map((k) => `backbone.${k}`));
    const result = matchStateDictKeys(source, target);
    expect(result.transforms).toEqual([{ from: "encoder.", to: "backbone.", count: 20_000 }]);
    expect(result.pairs.every((p, i) => p.source === `encoder.${network[i]}`)).toBe(true);
  });

  it("matches 20,000 identical keys exactly", () => {
    const dict = keyInfo(network);
    const result = matchStateDictKeys(dict, dict);
    expect(result.pairs).toHaveLength(20_000);
    expect(result.transforms).toEqual([]);
  });
});
