import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyOverrides, parseOverride } from "../../src/config/overrides.js";
import { ConfigError } from "../../src/errors.js";

/** Freezes every mapping and list, so that any write to the input throws. */
function deepFreeze<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === "object" && node !== null && !Object.isFrozen(node)) {
      Object.freeze(node);
      stack.push(...Object.values(node));
    }
  }
  return value;
}

function overrideError(doc: unknown, overrides: string[]): ConfigError {
  try {
    applyOverrides(doc, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("CONFIG_OVERRIDE");
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const base = () =>
  deepFreeze({
    model: { width: 8, layers: [1, 2] },
    checkpoint: { source: "a.ckpt", loading: { type: "transfer_learning", strict: false } },
  });

describe("key=value", () => {
  it("changes an existing key", () => {
    const result = applyOverrides(base(), ["checkpoint.loading.type=warm_start", "model.width=16"]);
    expect(result).toEqual({
      model: { width: 16, layers: [1, 2] },
      checkpoint: { source: "a.ckpt", loading: { type: "warm_start", strict: false } },
    });
  });

  it("may create loadout's own keys, with the mappings on the way", () => {
    expect(
      applyOverrides({}, [
        "checkpoint.loading.type=warm_start",
        "checkpoint.loading.reset_layers=[decoder, head]",
        "checkpoint.source=b.ckpt",
      ]),
    ).toEqual({
      checkpoint: {
        loading: { type: "warm_start", reset_layers: ["decoder", "head"] },
        source: "b.ckpt",
      },
    });
    expect(applyOverrides({ checkpoint: null }, ["checkpoint.loading.mode=in_place"])).toEqual({
      checkpoint: { loading: { mode: "in_place" } },
    });
  });

  it("refuses to create other keys, and suggests + or a close key", () => {
    const error = overrideError(base(), ["model.widht=16"]);
    expect(error.message).toBe(
      "override 'model.widht=16': model.widht does not exist (did you mean 'width'?) (use +model.widht=... to add it).",
    );
    expect(overrideError(base(), ["trainer.max_epochs=3"]).message).toContain(
      "trainer does not exist (use +trainer.max_epochs=... to add it)",
    );
  });

  it("names unknown checkpoint.loading keys with a suggestion", () => {
    const error = overrideError(base(), ["checkpoint.loading.skip_mismatch=true"]);
    expect(error.message).toContain("unknown key 'skip_mismatch' (did you mean 'skip_mismatched'?");
    expect(error.message).toContain("allowed: type, strict, skip_mismatched");
  });

  it("refuses a path through something that is not a mapping", () => {
    expect(overrideError(base(), ["model.layers.first=1"]).message).toContain(
      "model.layers is a list, not a mapping",
    );
    expect(overrideError(base(), ["checkpoint.source.path=x"]).message).toContain(
      "checkpoint.source is 'a.ckpt', not a mapping",
    );
    expect(overrideError({ model: null }, ["model.width=1"]).message).toContain(
      "model is null, not a mapping",
    );
  });
});

describe("values are YAML scalars and flow collections", () => {
  const overriddenValue = (text: string) =>
    (applyOverrides({}, [`+v=${text}`]) as { v: unknown }).v;

  it("reads YAML 1.2 core scalars", () => {
    expect(overriddenValue("true")).toBe(true);
    expect(overriddenValue("false")).toBe(false);
    expect(overriddenValue("null")).toBe(null);
    expect(overriddenValue("~")).toBe(null);
    expect(overriddenValue("1e-3")).toBe(0.001);
    expect(overriddenValue("42")).toBe(42);
    expect(overriddenValue("0x1f")).toBe(31);
    expect(overriddenValue(".inf")).toBe(Number.POSITIVE_INFINITY);
    expect(overriddenValue("yes")).toBe("yes");
    expect(overriddenValue("warm_start")).toBe("warm_start");
    expect(overriddenValue("'1'")).toBe("1");
    expect(overriddenValue('"a=b"')).toBe("a=b");
    expect(overriddenValue("a=b")).toBe("a=b");
    expect(overriddenValue("hello world")).toBe("hello world");
  });

  it("an empty value is the empty string (as in Hydra)", () => {
    expect(overriddenValue("")).toBe("");
  });

  it("reads flow collections", () => {
    expect(overriddenValue("[decoder, head]")).toEqual(["decoder", "head"]);
    expect(overriddenValue("[]")).toEqual([]);
    expect(overriddenValue("{pattern: ^a, replacement: b}")).toEqual({
      pattern: "^a",
      replacement: "b",
    });
    expect(overriddenValue("[{a: 1}, [2, 3]]")).toEqual([{ a: 1 }, [2, 3]]);
  });

  it("refuses block collections and bad YAML", () => {
    expect(overrideError({}, ["+v=a: b"]).message).toContain("value is a block collection");
    expect(overrideError({}, ["+v=[a, b"]).message).toContain("value is not valid YAML");
  });
});

describe("+key=value adds", () => {
  it("creates a key and the mappings on the way", () => {
    expect(
      applyOverrides(base(), ["+trainer.max_epochs=3", "+checkpoint.loading.mode=in_place"]),
    ).toEqual({
      ...base(),
      trainer: { max_epochs: 3 },
      checkpoint: {
        source: "a.ckpt",
        loading: { type: "transfer_learning", strict: false, mode: "in_place" },
      },
    });
  });

  it("refuses a key that exists", () => {
    expect(overrideError(base(), ["+model.width=3"]).message).toContain(
      "model.width already exists (8): use model.width=... to change it, or ++model.width=... to set it either way",
    );
  });
});

describe("++key=value sets either way", () => {
  it("adds or replaces", () => {
    expect(applyOverrides(base(), ["++model.width=3", "++model.depth=2"]).model).toEqual({
      width: 3,
      layers: [1, 2],
      depth: 2,
    });
  });
});

describe("~key deletes", () => {
  it("removes a key", () => {
    expect(applyOverrides(base(), ["~checkpoint.loading.strict", "~model"])).toEqual({
      checkpoint: { source: "a.ckpt", loading: { type: "transfer_learning" } },
    });
  });

  it("~key=value removes only when the value matches", () => {
    expect(applyOverrides(base(), ["~model.layers=[1, 2]"]).model).toEqual({ width: 8 });
    expect(overrideError(base(), ["~model.width=9"]).message).toContain(
      "model.width is 8, not 9, so it was not deleted",
    );
  });

  it("refuses a key that does not exist", () => {
    expect(overrideError(base(), ["~model.depth"]).message).toContain(
      "model.depth does not exist, so it cannot be deleted",
    );
  });
});

describe("malformed overrides", () => {
  it("need key=value", () => {
    expect(overrideError({}, ["checkpoint.loading.type"]).message).toContain("expected key=value");
    expect(overrideError({}, ["=3"]).message).toContain("is not a dotted key path");
    expect(overrideError({}, ["a..b=3"]).message).toContain("'a..b' is not a dotted key path");
  });

  it("never set __proto__", () => {
    expect(overrideError({}, ["+__proto__.polluted=1"]).message).toContain("'__proto__'");
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("are reported all together, one per line", () => {
    const error = overrideError(base(), [
      "model.widht=1",
      "checkpoint.loading.type=cold_start",
      "~nope",
    ]);
    const lines = error.message.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe("2 problems in the configuration.");
    expect(lines[1]).toMatch(/^override 'model.widht=1': /);
    expect(lines[2]).toMatch(/^override '~nope': /);
  });

  it("parseOverride reports what it read", () => {
    expect(parseOverride("++a.b=[1]")).toEqual({
      text: "++a.b=[1]",
      operation: "force",
      path: ["a", "b"],
      hasValue: true,
      value: [1],
    });
    expect(parseOverride("~a")).toMatchObject({
      operation: "delete",
      path: ["a"],
      hasValue: false,
    });
    expect(() => parseOverride("a")).toThrow(ConfigError);
  });

  it("the document must be a mapping", () => {
    expect(overrideError([1], ["a=1"]).message).toContain("the document is a list");
  });
});

/** How a user types a scalar on the command line (YAML 1.2 core schema spellings). */
function typed(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    if (Number.isNaN(value)) return ".nan";
    if (value === Number.POSITIVE_INFINITY) return ".inf";
    if (value === Number.NEGATIVE_INFINITY) return "-.inf";
    return Object.is(value, -0) ? "-0" : String(value);
  }
  return JSON.stringify(value); // a YAML double-quoted scalar
}

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.string({ unit: "grapheme" }),
);

const documentArbitrary = fc.dictionary(
  fc.string({ minLength: 1 }).filter((k) => !k.includes(".") && k !== "__proto__"),
  fc.jsonValue(),
);

describe("properties", () => {
  it("a.b=v then reading a.b gives v, and the input is never changed", () => {
    fc.assert(
      fc.property(documentArbitrary, fc.jsonValue(), scalar, (rest, old, value) => {
        const doc = deepFreeze({ ...rest, a: { b: old } });
        const before = structuredClone(doc);
        const result = applyOverrides(doc, [`a.b=${typed(value)}`]) as { a: { b: unknown } };
        expect(result.a.b).toBe(value);
        expect(doc).toEqual(before);
      }),
    );
  });

  it("++a.b=v works whether or not a.b exists, and changes nothing else", () => {
    fc.assert(
      fc.property(documentArbitrary, scalar, (rest, value) => {
        const doc = deepFreeze(Object.fromEntries(Object.entries(rest).filter(([k]) => k !== "a")));
        const before = structuredClone(doc);
        const result = applyOverrides(doc, [`++a.b=${typed(value)}`]);
        expect((result.a as { b: unknown }).b).toBe(value);
        expect({ ...result, a: undefined }).toEqual({ ...before, a: undefined });
        expect(doc).toEqual(before);
      }),
    );
  });

  it("~ after + gives back an equal document", () => {
    fc.assert(
      fc.property(documentArbitrary, scalar, (rest, value) => {
        const doc = deepFreeze({ ...rest, a: {} });
        expect(applyOverrides(doc, [`+a.new=${typed(value)}`, "~a.new"])).toEqual(doc);
      }),
    );
  });
});
