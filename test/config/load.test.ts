import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { loadConfigFile } from "../../src/config/load-file.js";
import { ConfigError } from "../../src/errors.js";

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

async function configErrorAsync(run: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("parseConfigText", () => {
  it("parses the brief's full example", () => {
    const text = String.raw`
checkpoint:
  source: path/to/ckpt
  loading:
    type: transfer_learning
    strict: false
    skip_mismatched: true
    mismatch: skip
    freeze_loaded: false
    key_map:
      - {pattern: "^backbone\\.", replacement: "encoder."}
    include: ["encoder.*"]
    exclude: ["*.num_batches_tracked"]
    mode: transactional
trainer: {max_epochs: 3}
`;
    const { config, warnings } = parseConfigText(text);
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      trainer: { max_epochs: 3 },
      checkpoint: {
        source: "path/to/ckpt",
        loading: {
          type: "transfer_learning",
          strict: false,
          skip_mismatched: true,
          mismatch: "skip",
          freeze_loaded: false,
          freeze: [],
          reset_layers: [],
          key_map: [{ pattern: "^backbone\\.", replacement: "encoder." }],
          include: ["encoder.*"],
          exclude: ["*.num_batches_tracked"],
          mode: "transactional",
        },
      },
    });
  });

  it("applies overrides before validating", () => {
    const { config } = parseConfigText("checkpoint:\n  loading:\n    type: transfer_learning\n", {
      overrides: [
        "checkpoint.loading.type=cold_start",
        "checkpoint.loading.reset_layers=[decoder, head]",
        "+checkpoint.loading.mode=in_place",
      ],
    });
    expect(config.checkpoint.loading).toMatchObject({
      type: "cold_start",
      strict: true,
      reset_layers: ["decoder", "head"],
      mode: "in_place",
    });
  });

  it("an empty document needs a default type", () => {
    expect(
      parseConfigText("", { defaultType: "weights_only" }).config.checkpoint.loading.type,
    ).toBe("weights_only");
    expect(configError(() => parseConfigText("# nothing\n", { file: "empty.yaml" })).message).toBe(
      "checkpoint.loading.type: missing: name a strategy (allowed: weights_only, transfer_learning, warm_start, cold_start) [empty.yaml].",
    );
  });

  it("validation errors name the file and every problem", () => {
    const error = configError(() =>
      parseConfigText("checkpoint:\n  loading:\n    type: warm_strat\n    skip_mismatch: true\n", {
        file: "configs/run.yaml",
      }),
    );
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.file).toBe("configs/run.yaml");
    expect(error.message).toContain(
      "checkpoint.loading.type: 'warm_strat' is not a strategy (did you mean 'warm_start'?",
    );
    expect(error.message).toContain("unknown key 'skip_mismatch' (did you mean 'skip_mismatched'?");
    expect(error.message.startsWith("2 problems in the configuration [configs/run.yaml].\n")).toBe(
      true,
    );
  });

  it("reads YAML 1.2: yes is text, so strict: yes is refused", () => {
    expect(
      configError(() => parseConfigText("checkpoint: {loading: {type: weights_only, strict: yes}}"))
        .message,
    ).toContain("got 'yes' (YAML 1.2 reads yes as text: write true or false)");
  });

  it("a document that is not a mapping is refused", () => {
    expect(configError(() => parseConfigText("- a\n- b\n", { file: "list.yaml" })).message).toBe(
      "(top level): expected a mapping of keys to values, got a list [list.yaml].",
    );
  });
});

describe("YAML errors", () => {
  it("name the file, line and column", () => {
    // The second `type` key is on line 4, column 5.
    const error = configError(() =>
      parseConfigText("checkpoint:\n  loading:\n    type: warm_start\n    type: cold_start\n", {
        file: "dup.yaml",
      }),
    );
    expect(error.code).toBe("CONFIG_YAML_SYNTAX");
    expect(error.file).toBe("dup.yaml");
    expect(error.message).toContain("line 4, column 5: Map keys must be unique");
    expect(error.message).toContain("[dup.yaml]");
  });

  it("report unclosed collections and quotes", () => {
    const error = configError(() =>
      parseConfigText('checkpoint:\n  source: "abc\n', { file: "q.yaml" }),
    );
    expect(error.message).toMatch(
      /^YAML syntax error at line \d+, column \d+: Missing closing "quote/,
    );
    expect(() => parseConfigText("a: [1, 2\nb: 3\n")).toThrow(ConfigError);
  });

  it("refuse several documents in one file", () => {
    expect(configError(() => parseConfigText("a: 1\n---\nb: 2\n")).message).toContain(
      "multiple documents",
    );
  });

  it("refuse alias expansion bombs", () => {
    const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 12; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(", ")}]`,
      );
    const error = configError(() =>
      parseConfigText(lines.join("\n"), { defaultType: "weights_only" }),
    );
    expect(error.message).toContain("aliases");
  });

  it("refuse absurd nesting with a ConfigError, not a stack overflow", () => {
    const deep = `a: ${"[".repeat(50_000)}${"]".repeat(50_000)}`;
    expect(configError(() => parseConfigText(deep)).message).toContain("nested too deeply");
  });

  it("pass warnings on (an unknown tag)", () => {
    const { warnings } = parseConfigText("note: !custom text\n", {
      defaultType: "weights_only",
      file: "t.yaml",
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^t\.yaml: YAML line 1, column 7: .*tag/i);
  });
});

describe("loadConfigFile", () => {
  let folder = "";
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "loadout-config-"));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it("reads, parses and resolves a file", async () => {
    const path = join(folder, "run.yaml");
    await writeFile(path, "\uFEFFcheckpoint:\n  source: x.ckpt\n  loading: {type: warm_start}\n");
    const { config } = await loadConfigFile(path, { overrides: ["checkpoint.source=y.ckpt"] });
    expect(config.checkpoint.source).toBe("y.ckpt");
    expect(config.checkpoint.loading.type).toBe("warm_start");
  });

  it("names the file in validation errors", async () => {
    const path = join(folder, "bad.yaml");
    await writeFile(path, "checkpoint:\n  loading: {type: cold}\n");
    const error = await configErrorAsync(() => loadConfigFile(path));
    expect(error.file).toBe(path);
    expect(error.message).toContain(`[${path}]`);
    expect(error.message).toContain("did you mean 'cold_start'?");
  });

  it("refuses a missing file", async () => {
    const error = await configErrorAsync(() => loadConfigFile(join(folder, "missing.yaml")));
    expect(error.code).toBe("CONFIG_READ");
    expect(error.message).toContain("ENOENT");
  });

  it("refuses a file larger than the limit before reading it", async () => {
    const path = join(folder, "big.yaml");
    await writeFile(path, `a: "${"x".repeat(200)}"\n`);
    const error = await configErrorAsync(() => loadConfigFile(path, { maxBytes: 100 }));
    expect(error.code).toBe("CONFIG_TOO_LARGE");
  });

  it("refuses bytes that are not UTF-8", async () => {
    const path = join(folder, "latin1.yaml");
    await writeFile(path, new Uint8Array([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
    expect((await configErrorAsync(() => loadConfigFile(path))).code).toBe("CONFIG_ENCODING");
  });
});

describe("templates in configs/checkpoint/loading", () => {
  const folder = join(import.meta.dirname, "../../configs/checkpoint/loading");
  /** Each strategy's defaults, as docs/configuration.md lists them. */
  const defaults = {
    weights_only: { strict: true, skip_mismatched: false, mismatch: "error" },
    transfer_learning: { strict: false, skip_mismatched: true, mismatch: "skip" },
    warm_start: { strict: true, skip_mismatched: false, mismatch: "error" },
    cold_start: { strict: true, skip_mismatched: false, mismatch: "error" },
  } as const;

  it("there is one per built-in strategy", async () => {
    expect((await readdir(folder)).sort()).toEqual(
      Object.keys(defaults)
        .map((name) => `${name}.yaml`)
        .sort(),
    );
  });

  for (const [type, expected] of Object.entries(defaults)) {
    it(`${type}.yaml parses and sets every option to its default`, async () => {
      const { config, warnings } = await loadConfigFile(join(folder, `${type}.yaml`));
      expect(warnings).toEqual([]);
      expect(config).toEqual({
        checkpoint: {
          loading: {
            type,
            ...expected,
            freeze_loaded: false,
            freeze: [],
            reset_layers: [],
            key_map: [],
            include: [],
            exclude: [],
            mode: "transactional",
          },
        },
      });
    });
  }

  it("every option of a template has a comment line above it", async () => {
    const { readFile } = await import("node:fs/promises");
    for (const type of Object.keys(defaults)) {
      const lines = (await readFile(join(folder, `${type}.yaml`), "utf8")).split("\n");
      lines.forEach((line, i) => {
        if (/^ {4}[a-z_]+:/.test(line) && !line.startsWith("    type:")) {
          expect(lines[i - 1], `${type}.yaml line ${i + 1}`).toMatch(/^\s*#/);
        }
      });
    }
  });
});
