import { describe, expect, it } from "vitest";
import {
  checkConfigDocument,
  checkLoadingConfig,
  resolveConfigDocument,
  resolveLoadingConfig,
} from "../../src/config/resolve.js";
import type { LoadingConfig } from "../../src/config/types.js";
import { ConfigError, LoadoutError } from "../../src/errors.js";

/** Defaults every strategy shares (the brief's table; docs/configuration.md repeats it). */
const COMMON = {
  freeze_loaded: false,
  freeze: [],
  reset_layers: [],
  key_map: [],
  include: [],
  exclude: [],
  mode: "transactional" as const,
};

const ALLOWED = "allowed: weights_only, transfer_learning, warm_start, cold_start";

/** The messages of every problem found in `raw` (a checkpoint.loading section). */
function problemsOf(raw: unknown, options = {}): string[] {
  const checked = checkLoadingConfig(raw, options);
  expect(checked.ok).toBe(false);
  return checked.problems.map((p) => `${p.path}: ${p.message}`);
}

function thrownBy(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(LoadoutError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("per-strategy defaults", () => {
  it("weights_only: strict, mismatches are errors", () => {
    expect(resolveLoadingConfig({ type: "weights_only" })).toEqual({
      ...COMMON,
      type: "weights_only",
      strict: true,
      skip_mismatched: false,
      mismatch: "error",
    } satisfies LoadingConfig);
  });

  it("transfer_learning: not strict, mismatches skipped, nothing frozen", () => {
    expect(resolveLoadingConfig({ type: "transfer_learning" })).toEqual({
      ...COMMON,
      type: "transfer_learning",
      strict: false,
      skip_mismatched: true,
      mismatch: "skip",
    });
  });

  it("warm_start: strict", () => {
    expect(resolveLoadingConfig({ type: "warm_start" })).toEqual({
      ...COMMON,
      type: "warm_start",
      strict: true,
      skip_mismatched: false,
      mismatch: "error",
    });
  });

  it("cold_start: strict, no layer reset unless asked", () => {
    expect(resolveLoadingConfig({ type: "cold_start" })).toEqual({
      ...COMMON,
      type: "cold_start",
      strict: true,
      skip_mismatched: false,
      mismatch: "error",
    });
    expect(
      resolveLoadingConfig({ type: "cold_start", reset_layers: ["decoder"] }).reset_layers,
    ).toEqual(["decoder"]);
  });

  it("a registered custom strategy gets weights_only's defaults", () => {
    expect(resolveLoadingConfig({ type: "lora" }, { knownTypes: ["lora"] })).toEqual({
      ...COMMON,
      type: "lora",
      strict: true,
      skip_mismatched: false,
      mismatch: "error",
    });
  });

  it("the spec's four configuration examples resolve", () => {
    expect(resolveLoadingConfig({ type: "weights_only", strict: false }).strict).toBe(false);
    const transfer = resolveLoadingConfig({
      type: "transfer_learning",
      strict: false,
      skip_mismatched: true,
      freeze_loaded: false,
    });
    expect([transfer.strict, transfer.mismatch, transfer.freeze_loaded]).toEqual([
      false,
      "skip",
      false,
    ]);
    expect(resolveLoadingConfig({ type: "warm_start" }).type).toBe("warm_start");
    expect(
      resolveLoadingConfig({ type: "cold_start", reset_layers: ["decoder"] }).reset_layers,
    ).toEqual(["decoder"]);
  });

  it("keeps every option as written", () => {
    const config = resolveLoadingConfig({
      type: "transfer_learning",
      freeze_loaded: true,
      freeze: ["encoder"],
      key_map: [{ pattern: "^backbone\\.", replacement: "encoder." }],
      include: ["encoder.*"],
      exclude: ["*.num_batches_tracked"],
      mode: "in_place",
    });
    expect(config).toMatchObject({
      freeze_loaded: true,
      freeze: ["encoder"],
      key_map: [{ pattern: "^backbone\\.", replacement: "encoder." }],
      include: ["encoder.*"],
      exclude: ["*.num_batches_tracked"],
      mode: "in_place",
    });
  });

  it("does not share or change its input", () => {
    const raw = { type: "cold_start", reset_layers: ["decoder"], include: ["a.*"] };
    const before = structuredClone(raw);
    const config = resolveLoadingConfig(Object.freeze(raw));
    expect(raw).toEqual(before);
    config.reset_layers.push("x");
    expect(raw.reset_layers).toEqual(["decoder"]);
  });
});

describe("the strategy type", () => {
  it("a misspelt type names the key, the value, the allowed values and the closest one", () => {
    const error = thrownBy(() => resolveLoadingConfig({ type: "warm_strat" }));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toContain(
      `checkpoint.loading.type: 'warm_strat' is not a strategy (did you mean 'warm_start'? ${ALLOWED})`,
    );
  });

  it("an unrelated type lists the allowed values without a guess", () => {
    const [problem] = problemsOf({ type: "banana" });
    expect(problem).toBe(`checkpoint.loading.type: 'banana' is not a strategy (${ALLOWED})`);
  });

  it("registered custom names are allowed and suggested", () => {
    const [problem] = problemsOf({ type: "lroa" }, { knownTypes: ["lora"] });
    expect(problem).toContain("did you mean 'lora'?");
    expect(problem).toContain(`${ALLOWED}, lora)`);
  });

  it("a missing type is an error unless the caller gives a default", () => {
    expect(problemsOf({})).toEqual([
      `checkpoint.loading.type: missing: name a strategy (${ALLOWED})`,
    ]);
    expect(problemsOf(undefined)).toHaveLength(1);
    expect(resolveLoadingConfig({}, { defaultType: "weights_only" }).type).toBe("weights_only");
    expect(resolveLoadingConfig(null, { defaultType: "transfer_learning" }).mismatch).toBe("skip");
    expect(resolveLoadingConfig({ type: "warm_start" }, { defaultType: "weights_only" }).type).toBe(
      "warm_start",
    );
  });

  it("a default type must itself be a strategy", () => {
    expect(problemsOf({}, { defaultType: "warm" }).join("\n")).toContain(
      "'warm' is not a strategy",
    );
  });

  it("a type that is not a string says what it got", () => {
    expect(problemsOf({ type: 3 })).toEqual([
      `checkpoint.loading.type: 3 is not a strategy (${ALLOWED})`,
    ]);
  });
});

describe("option values", () => {
  it("unknown keys name the section and suggest the known key", () => {
    const [problem] = problemsOf({ type: "transfer_learning", skip_mismatch: true });
    expect(problem).toContain("checkpoint.loading: unknown key 'skip_mismatch'");
    expect(problem).toContain("did you mean 'skip_mismatched'?");
    expect(problem).toContain("allowed: type, strict, skip_mismatched, mismatch");
  });

  it("enum values suggest the closest allowed value", () => {
    expect(problemsOf({ type: "transfer_learning", mismatch: "overlapp" })).toEqual([
      "checkpoint.loading.mismatch: 'overlapp' is not a mismatch policy (did you mean 'overlap'? allowed: skip, error, overlap)",
    ]);
    expect(problemsOf({ type: "weights_only", mode: "in-place" })).toEqual([
      "checkpoint.loading.mode: 'in-place' is not a loading mode (did you mean 'in_place'? allowed: transactional, in_place)",
    ]);
  });

  it("booleans must be YAML 1.2 booleans", () => {
    expect(problemsOf({ type: "weights_only", strict: "yes" })).toEqual([
      "checkpoint.loading.strict: expected true or false, got 'yes' (YAML 1.2 reads yes as text: write true or false)",
    ]);
    expect(problemsOf({ type: "weights_only", freeze_loaded: 1 })).toEqual([
      "checkpoint.loading.freeze_loaded: expected true or false, got 1",
    ]);
  });

  it("null is not a value: remove the key for the default", () => {
    expect(problemsOf({ type: "weights_only", strict: null })).toEqual([
      "checkpoint.loading.strict: expected true or false, got null (remove the key to get the default)",
    ]);
  });

  it("lists must be lists of non-empty strings", () => {
    expect(problemsOf({ type: "weights_only", include: "encoder.*" })).toEqual([
      "checkpoint.loading.include: expected a list, got 'encoder.*' (write a list: [encoder.*])",
    ]);
    expect(problemsOf({ type: "weights_only", exclude: ["a", ""] })).toEqual([
      "checkpoint.loading.exclude[1]: must not be empty",
    ]);
    expect(problemsOf({ type: "weights_only", freeze: [1] })).toEqual([
      "checkpoint.loading.freeze[0]: expected a string, got 1",
    ]);
  });

  it("the section itself must be a mapping", () => {
    expect(problemsOf("weights_only")).toEqual([
      "checkpoint.loading: expected a mapping, got 'weights_only'",
    ]);
  });

  it("collects every problem and reports them one per line", () => {
    const error = thrownBy(() =>
      resolveLoadingConfig(
        { type: "warm_strat", skip_mismatch: true, strict: "no", mode: "fast" },
        { file: "run.yaml" },
      ),
    );
    const lines = error.message.split("\n");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toBe("4 problems in the configuration [run.yaml].");
    expect(lines[1]).toContain("checkpoint.loading.type: 'warm_strat'");
    expect(
      lines.some((l) => l.startsWith("checkpoint.loading.strict: expected true or false")),
    ).toBe(true);
    expect(lines.some((l) => l.startsWith("checkpoint.loading.mode: 'fast'"))).toBe(true);
    expect(lines.some((l) => l.includes("unknown key 'skip_mismatch'"))).toBe(true);
    expect(error.file).toBe("run.yaml");
  });
});

describe("key_map", () => {
  const expected = [{ pattern: "^backbone\\.", replacement: "encoder." }];

  it("accepts the list form and the mapping form alike", () => {
    const list = resolveLoadingConfig({ type: "transfer_learning", key_map: expected });
    const mapping = resolveLoadingConfig({
      type: "transfer_learning",
      key_map: { "^backbone\\.": "encoder." },
    });
    expect(list.key_map).toEqual(expected);
    expect(mapping.key_map).toEqual(expected);
  });

  it("keeps the mapping form's order", () => {
    const config = resolveLoadingConfig({
      type: "transfer_learning",
      key_map: { "^a\\.": "b.", "^c\\.": "d." },
    });
    expect(config.key_map.map((e) => e.pattern)).toEqual(["^a\\.", "^c\\."]);
  });

  it("names a pattern that is not a JavaScript RegExp", () => {
    const [problem] = problemsOf({
      type: "transfer_learning",
      key_map: [{ pattern: "^(enc", replacement: "x" }],
    });
    expect(problem).toContain(
      "checkpoint.loading.key_map[0].pattern: '^(enc' is not a valid JavaScript regular expression",
    );
    const [mapped] = problemsOf({ type: "transfer_learning", key_map: { "[": "x" } });
    expect(mapped).toContain(
      `checkpoint.loading.key_map["["]: '[' is not a valid JavaScript regular expression`,
    );
  });

  it("explains Python-only regex and replacement syntax", () => {
    const problems = problemsOf({
      type: "transfer_learning",
      key_map: [{ pattern: "^(?P<block>\\d+)\\.", replacement: "layer\\1." }],
    });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain("(?<name>...) in JavaScript");
    expect(problems[1]).toContain("checkpoint.loading.key_map[0].replacement");
    expect(problems[1]).toContain("$1");
  });

  it("checks entries' keys", () => {
    const problems = problemsOf({
      type: "transfer_learning",
      key_map: [{ pattern: "a", replace: "b" }],
    });
    expect(problems).toContain("checkpoint.loading.key_map[0].replacement: missing (required)");
    expect(problems.join("\n")).toContain("unknown key 'replace' (did you mean 'replacement'?");
  });

  it("refuses anything but a list or a mapping", () => {
    expect(problemsOf({ type: "transfer_learning", key_map: "a->b" })).toEqual([
      "checkpoint.loading.key_map: expected a list of {pattern, replacement} or a mapping of pattern: replacement, got 'a->b'",
    ]);
    expect(problemsOf({ type: "transfer_learning", key_map: { a: 1 } })).toEqual([
      `checkpoint.loading.key_map.a: expected a string, got 1`,
    ]);
  });
});

describe("skip_mismatched and mismatch agree", () => {
  const resolve = (raw: object) => resolveLoadingConfig({ type: "transfer_learning", ...raw });

  it("skip_mismatched alone sets mismatch", () => {
    expect(resolve({ skip_mismatched: false })).toMatchObject({
      skip_mismatched: false,
      mismatch: "error",
    });
    expect(resolve({ skip_mismatched: true })).toMatchObject({
      skip_mismatched: true,
      mismatch: "skip",
    });
  });

  it("mismatch alone sets skip_mismatched", () => {
    expect(resolve({ mismatch: "overlap" })).toMatchObject({
      skip_mismatched: false,
      mismatch: "overlap",
    });
    expect(resolve({ mismatch: "error" })).toMatchObject({
      skip_mismatched: false,
      mismatch: "error",
    });
    expect(resolve({ mismatch: "skip" })).toMatchObject({
      skip_mismatched: true,
      mismatch: "skip",
    });
  });

  it("both, when they agree", () => {
    expect(resolve({ skip_mismatched: true, mismatch: "skip" }).mismatch).toBe("skip");
    expect(resolve({ skip_mismatched: false, mismatch: "overlap" }).mismatch).toBe("overlap");
  });

  it("a contradiction is an error", () => {
    expect(
      problemsOf({ type: "transfer_learning", skip_mismatched: false, mismatch: "skip" }),
    ).toEqual([
      "checkpoint.loading.skip_mismatched: false contradicts mismatch: skip (skip_mismatched: true is the same as mismatch: skip; keep only mismatch)",
    ]);
    const [overlap] = problemsOf({
      type: "transfer_learning",
      skip_mismatched: true,
      mismatch: "overlap",
    });
    expect(overlap).toContain(
      "checkpoint.loading.skip_mismatched: true contradicts mismatch: overlap",
    );
    const [error] = problemsOf({
      type: "transfer_learning",
      skip_mismatched: true,
      mismatch: "error",
    });
    expect(error).toContain("checkpoint.loading.skip_mismatched: true contradicts mismatch: error");
  });
});

describe("strict and mismatch", () => {
  it("weights_only can skip or overlap only when strict is false", () => {
    const [problem] = problemsOf({ type: "weights_only", skip_mismatched: true });
    expect(problem).toContain("checkpoint.loading.skip_mismatched: true needs strict: false");
    expect(problem).toContain("strict: true (weights_only's default)");
    const [overlap] = problemsOf({ type: "weights_only", mismatch: "overlap" });
    expect(overlap).toContain("checkpoint.loading.mismatch: 'overlap' needs strict: false");
    expect(
      resolveLoadingConfig({ type: "weights_only", strict: false, skip_mismatched: true }).mismatch,
    ).toBe("skip");
    expect(
      resolveLoadingConfig({ type: "weights_only", strict: false, mismatch: "overlap" }).mismatch,
    ).toBe("overlap");
  });

  it("strict: true written next to skip or overlap is a contradiction", () => {
    const [problem] = problemsOf({ type: "weights_only", strict: true, mismatch: "skip" });
    expect(problem).toContain("checkpoint.loading.strict: true contradicts mismatch: skip");
    expect(problem).toContain("set strict: false to skip mismatched tensors");
  });

  it("transfer_learning with strict: true must also say mismatch: error", () => {
    const [problem] = problemsOf({ type: "transfer_learning", strict: true });
    expect(problem).toContain(
      "checkpoint.loading.strict: true contradicts mismatch: skip (transfer_learning's default)",
    );
    expect(
      resolveLoadingConfig({ type: "transfer_learning", strict: true, mismatch: "error" }),
    ).toMatchObject({ strict: true, mismatch: "error", skip_mismatched: false });
  });

  it("cold_start and custom strategies follow the same rule", () => {
    expect(problemsOf({ type: "cold_start", mismatch: "skip" })[0]).toContain(
      "needs strict: false",
    );
    expect(
      resolveLoadingConfig({ type: "cold_start", strict: false, mismatch: "skip" }).mismatch,
    ).toBe("skip");
    expect(
      problemsOf({ type: "lora", skip_mismatched: true }, { knownTypes: ["lora"] })[0],
    ).toContain("strict: true (lora's default)");
  });

  it("with an invalid type, written values are still checked against each other", () => {
    const problems = problemsOf({ type: "banana", strict: true, mismatch: "overlap" });
    expect(problems).toHaveLength(2);
    expect(problems[1]).toContain("checkpoint.loading.strict: true contradicts mismatch: overlap");
  });
});

describe("warm_start resumes exactly", () => {
  it("refuses anything partial", () => {
    expect(problemsOf({ type: "warm_start", strict: false })).toEqual([
      "checkpoint.loading.strict: false is not allowed with warm_start: resuming restores every tensor exactly (use weights_only or transfer_learning for a partial load)",
    ]);
    expect(problemsOf({ type: "warm_start", mismatch: "overlap" })[0]).toContain(
      "checkpoint.loading.mismatch: 'overlap' is not allowed with warm_start",
    );
    expect(problemsOf({ type: "warm_start", skip_mismatched: true })[0]).toContain(
      "checkpoint.loading.skip_mismatched: true is not allowed with warm_start",
    );
    expect(problemsOf({ type: "warm_start", freeze_loaded: true })[0]).toContain(
      "checkpoint.loading.freeze_loaded: true is not allowed with warm_start",
    );
  });

  it("accepts the values that ask for nothing, and freeze", () => {
    const config = resolveLoadingConfig({
      type: "warm_start",
      strict: true,
      skip_mismatched: false,
      mismatch: "error",
      freeze_loaded: false,
      reset_layers: [],
      freeze: ["encoder"],
      key_map: { "^old\\.": "new." },
    });
    expect(config).toMatchObject({ strict: true, mismatch: "error", freeze: ["encoder"] });
  });

  it("reports every problem together", () => {
    expect(
      problemsOf({ type: "warm_start", strict: false, mismatch: "skip", freeze_loaded: true }),
    ).toHaveLength(3);
  });
});

describe("reset_layers is cold_start's", () => {
  it("is an error with any other strategy", () => {
    for (const type of ["weights_only", "transfer_learning", "warm_start"]) {
      expect(problemsOf({ type, reset_layers: ["decoder"] })).toContain(
        `checkpoint.loading.reset_layers: only cold_start resets layers, and type is '${type}' (use type: cold_start, or remove reset_layers)`,
      );
    }
    expect(
      problemsOf({ type: "lora", reset_layers: ["decoder"] }, { knownTypes: ["lora"] }),
    ).toHaveLength(1);
  });

  it("an empty list asks for nothing and is accepted", () => {
    expect(resolveLoadingConfig({ type: "weights_only", reset_layers: [] }).reset_layers).toEqual(
      [],
    );
  });
});

describe("the whole document", () => {
  it("keeps unknown top-level keys and fills in checkpoint", () => {
    const doc = {
      model: { width: 3 },
      checkpoint: { source: "a.ckpt", loading: { type: "warm_start" } },
    };
    const config = resolveConfigDocument(doc);
    expect(config.model).toEqual({ width: 3 });
    expect(config.checkpoint.source).toBe("a.ckpt");
    expect(config.checkpoint.loading.strict).toBe(true);
  });

  it("a missing or null checkpoint section needs a default type", () => {
    expect(resolveConfigDocument({}, { defaultType: "weights_only" }).checkpoint.loading.type).toBe(
      "weights_only",
    );
    expect(
      resolveConfigDocument({ checkpoint: null }, { defaultType: "weights_only" }).checkpoint,
    ).toEqual({
      loading: resolveLoadingConfig({ type: "weights_only" }),
    });
    expect(thrownBy(() => resolveConfigDocument({})).message).toContain(
      "checkpoint.loading.type: missing",
    );
  });

  it("source is a non-empty string; null means none", () => {
    const none = resolveConfigDocument({
      checkpoint: { source: null, loading: { type: "warm_start" } },
    });
    expect("source" in none.checkpoint).toBe(false);
    const checked = checkConfigDocument({
      checkpoint: { source: "", loading: { type: "warm_start" } },
    });
    expect(checked.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "checkpoint.source: must not be empty",
    ]);
  });

  it("unknown keys under checkpoint are errors with a suggestion", () => {
    const checked = checkConfigDocument({ checkpoint: { laoding: { type: "warm_start" } } });
    const lines = checked.problems.map((p) => `${p.path}: ${p.message}`);
    expect(lines[0]).toBe(
      "checkpoint: unknown key 'laoding' (did you mean 'loading'? allowed: source, loading)",
    );
  });

  it("points at a misspelt checkpoint section", () => {
    const checked = checkConfigDocument({ chekpoint: { loading: { type: "warm_start" } } });
    expect(checked.problems.map((p) => `${p.path}: ${p.message}`)).toContain(
      "chekpoint: unknown top-level key (did you mean 'checkpoint'?)",
    );
  });

  it("the document must be a mapping", () => {
    expect(checkConfigDocument(["a"]).problems[0]).toEqual({
      path: "(top level)",
      message: "expected a mapping of keys to values, got a list",
    });
  });
});
