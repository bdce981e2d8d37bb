import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfigText } from "../../src/config/load.js";
import { migrateLegacyConfig } from "../../src/config/migrate.js";
import { resolveConfigDocument } from "../../src/config/resolve.js";
import { ConfigError } from "../../src/errors.js";

function frozen<T>(value: T): T {
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

function migrate(doc: object, options = {}) {
  const input = frozen(doc);
  const before = structuredClone(input);
  const result = migrateLegacyConfig(input, options);
  expect(input).toEqual(before);
  return result;
}

function migrationError(doc: object): ConfigError {
  try {
    migrateLegacyConfig(doc);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

/** The YAML snippet printed by the first warning, parsed back. */
function snippetOf(warning: string | undefined): unknown {
  expect(warning).toMatch(
    /^deprecated: legacy anemoi-training keys \(.*\) were migrated; replace them with:\n/,
  );
  return parse(warning!.slice(warning!.indexOf("\n") + 1));
}

describe("each legacy flag", () => {
  it("training.load_weights_only: true is a weights-only load, non-strict as anemoi-training did it", () => {
    const { doc, warnings } = migrate({ training: { load_weights_only: true, lr: 0.1 } });
    expect(doc).toEqual({
      training: { lr: 0.1 },
      checkpoint: { loading: { type: "weights_only", strict: false } },
    });
    expect(warnings[0]).toContain(
      "deprecated: legacy anemoi-training keys (training.load_weights_only) were",
    );
    expect(snippetOf(warnings[0])).toEqual({ checkpoint: doc.checkpoint });
  });

  it("training.transfer_learning: true is transfer_learning (strict false, skip_mismatched true)", () => {
    const { doc, warnings } = migrate({ training: { transfer_learning: true } });
    expect(doc).toEqual({
      checkpoint: { loading: { type: "transfer_learning", strict: false, skip_mismatched: true } },
    });
    expect(warnings[1]).toContain(
      "anemoi-training applied it only together with load_weights_only: true",
    );
  });

  it("load_weights_only and transfer_learning together are anemoi-training's transfer learning", () => {
    const { doc, warnings } = migrate({
      training: { load_weights_only: true, transfer_learning: true },
    });
    expect(doc.checkpoint).toEqual({
      loading: { type: "transfer_learning", strict: false, skip_mismatched: true },
    });
    expect(warnings).toHaveLength(1);
  });

  it("resume_from_checkpoint (top level or under training) is a warm start from that path", () => {
    for (const doc of [
      { resume_from_checkpoint: "runs/a/last.ckpt" },
      { training: { resume_from_checkpoint: "runs/a/last.ckpt" } },
      {
        resume_from_checkpoint: "runs/a/last.ckpt",
        training: { resume_from_checkpoint: "runs/a/last.ckpt" },
      },
    ]) {
      expect(migrate(doc).doc).toEqual({
        checkpoint: { source: "runs/a/last.ckpt", loading: { type: "warm_start" } },
      });
    }
  });

  it("system.input.warm_start is a warm start from that file", () => {
    const { doc } = migrate({
      system: { input: { warm_start: "/ckpt/epoch_10.ckpt", dataset: "d.zarr" } },
    });
    expect(doc).toEqual({
      system: { input: { dataset: "d.zarr" } },
      checkpoint: { source: "/ckpt/epoch_10.ckpt", loading: { type: "warm_start" } },
    });
  });

  it("hardware.files.warm_start is a file in hardware.paths.warm_start, or in the run's folder", () => {
    expect(
      migrate({ hardware: { files: { warm_start: "epoch_10.ckpt" } } }).doc.checkpoint,
    ).toEqual({
      source: "epoch_10.ckpt",
      loading: { type: "warm_start" },
    });
    const withFolder = migrate({
      hardware: { files: { warm_start: "epoch_10.ckpt" }, paths: { warm_start: "/ckpt/run1/" } },
    });
    expect(withFolder.doc).toEqual({
      checkpoint: { source: "/ckpt/run1/epoch_10.ckpt", loading: { type: "warm_start" } },
    });
    const inRun = migrate({
      training: { run_id: "r1" },
      hardware: { files: { warm_start: "e.ckpt" } },
    });
    expect(inRun.doc.checkpoint).toEqual({ source: "r1/e.ckpt", loading: { type: "warm_start" } });
  });

  it("training.run_id is a warm start from that run's last.ckpt", () => {
    expect(migrate({ training: { run_id: "abc123" } }).doc).toEqual({
      checkpoint: { source: "abc123/last.ckpt", loading: { type: "warm_start" } },
    });
  });

  it("the caller's resolver places a run's checkpoint", () => {
    const resolveRunCheckpoint = (runId: string, file: string) =>
      `/scratch/checkpoints/${runId}/${file}`;
    expect(
      migrate({ training: { run_id: "abc123" } }, { resolveRunCheckpoint }).doc.checkpoint,
    ).toEqual({
      source: "/scratch/checkpoints/abc123/last.ckpt",
      loading: { type: "warm_start" },
    });
  });

  it("training.fork_run_id resumes the training state of that run (a fork only writes elsewhere)", () => {
    expect(migrate({ training: { fork_run_id: "parent" } }).doc.checkpoint).toEqual({
      source: "parent/last.ckpt",
      loading: { type: "warm_start" },
    });
  });

  it("with both run_id and fork_run_id, the checkpoint is the fork's", () => {
    const { doc, warnings } = migrate({ training: { run_id: "child", fork_run_id: "parent" } });
    expect(doc.checkpoint).toEqual({ source: "parent/last.ckpt", loading: { type: "warm_start" } });
    expect(warnings[1]).toContain("training.run_id 'child' only named the new run");
  });

  it("fork_run_id with load_weights_only (a fine-tuning set-up) loads weights only", () => {
    const { doc } = migrate({
      training: { run_id: null, fork_run_id: "pre", load_weights_only: true },
    });
    expect(doc.checkpoint).toEqual({
      source: "pre/last.ckpt",
      loading: { type: "weights_only", strict: false },
    });
  });

  it("training.submodules_to_freeze freezes those modules wherever they are", () => {
    const { doc } = migrate({
      training: {
        transfer_learning: true,
        load_weights_only: true,
        submodules_to_freeze: ["encoder", "processor"],
      },
    });
    expect(doc.checkpoint).toEqual({
      loading: {
        type: "transfer_learning",
        strict: false,
        skip_mismatched: true,
        freeze: ["encoder", "*.encoder.*", "processor", "*.processor.*"],
      },
    });
  });

  it("submodules_to_freeze alone names no strategy: resolving then needs a default type", () => {
    const { doc } = migrate({ training: { submodules_to_freeze: ["encoder"] } });
    expect(doc.checkpoint).toEqual({ loading: { freeze: ["encoder", "*.encoder.*"] } });
    expect(() => resolveConfigDocument(doc)).toThrow(/checkpoint\.loading\.type: missing/);
    expect(
      resolveConfigDocument(doc, { defaultType: "weights_only" }).checkpoint.loading.freeze,
    ).toEqual(["encoder", "*.encoder.*"]);
  });

  it("keeps an explicit checkpoint.source next to a mode flag", () => {
    const { doc } = migrate({
      checkpoint: { source: "a.ckpt" },
      training: { load_weights_only: true },
    });
    expect(doc.checkpoint).toEqual({
      source: "a.ckpt",
      loading: { type: "weights_only", strict: false },
    });
  });
});

describe("flags that ask for nothing", () => {
  it("are removed with a warning, emptied sections with them", () => {
    const { doc, warnings } = migrate({
      training: {
        load_weights_only: false,
        transfer_learning: false,
        run_id: null,
        fork_run_id: null,
        lr: 1,
      },
      system: { input: { warm_start: null } },
      checkpoint: { loading: { type: "weights_only" } },
    });
    expect(doc).toEqual({ training: { lr: 1 }, checkpoint: { loading: { type: "weights_only" } } });
    expect(warnings).toEqual([
      "deprecated: removed legacy keys that ask for nothing: training.load_weights_only (false), training.transfer_learning (false), training.run_id (null), training.fork_run_id (null), system.input.warm_start (null). Delete them from the configuration.",
    ]);
  });

  it("an empty freeze list and a folder without a file ask for nothing", () => {
    const { doc } = migrate({
      training: { submodules_to_freeze: [] },
      hardware: { paths: { warm_start: "/x" } },
    });
    expect(doc).toEqual({});
  });

  it("a document without legacy keys is returned as it is", () => {
    const input = frozen({ checkpoint: { loading: { type: "warm_start" } }, training: { lr: 1 } });
    const result = migrateLegacyConfig(input);
    expect(result.doc).toBe(input);
    expect(result.warnings).toEqual([]);
  });
});

describe("conflicts and bad values", () => {
  it("a legacy flag next to checkpoint.loading is an error naming each flag", () => {
    const error = migrationError({
      training: { load_weights_only: true, submodules_to_freeze: ["encoder"] },
      checkpoint: { loading: { type: "transfer_learning" } },
    });
    expect(error.code).toBe("CONFIG_LEGACY_CONFLICT");
    expect(error.message).toContain(
      "training.load_weights_only: legacy key set together with checkpoint.loading, so loadout cannot tell which one you mean (remove training.load_weights_only; its place is checkpoint.loading.type)",
    );
    expect(error.message).toContain(
      "training.submodules_to_freeze: legacy key set together with checkpoint.loading",
    );
    expect(error.message).toContain("its place is checkpoint.loading.freeze");
  });

  it("transfer_learning with load_weights_only: false is an error explaining what anemoi did", () => {
    const error = migrationError({
      training: { load_weights_only: false, transfer_learning: true },
    });
    expect(error.message).toContain(
      "training.transfer_learning: true conflicts with training.load_weights_only: false",
    );
    expect(error.message).toContain("resumed the full training state");
  });

  it("two places naming a checkpoint are an error", () => {
    expect(
      migrationError({ resume_from_checkpoint: "a", system: { input: { warm_start: "b" } } })
        .message,
    ).toContain(
      "system.input.warm_start: names a checkpoint, and so does resume_from_checkpoint: keep one",
    );
    expect(
      migrationError({ resume_from_checkpoint: "a", training: { resume_from_checkpoint: "b" } })
        .message,
    ).toContain("training.resume_from_checkpoint: 'b' differs from resume_from_checkpoint 'a'");
    expect(
      migrationError({ resume_from_checkpoint: "a", training: { run_id: "r" } }).message,
    ).toContain(
      "training.run_id: names a run to resume from, and resume_from_checkpoint names a checkpoint",
    );
    expect(
      migrationError({
        system: { input: { warm_start: "a" } },
        hardware: { files: { warm_start: "b" } },
      }).message,
    ).toContain(
      "hardware.files.warm_start: names a checkpoint, and so does system.input.warm_start",
    );
    expect(
      migrationError({ checkpoint: { source: "a" }, training: { run_id: "r" } }).message,
    ).toContain("training.run_id: legacy key names a checkpoint, and so does checkpoint.source");
  });

  it("system.input.warm_start wins over run ids, as in anemoi-training, with a note", () => {
    const { doc, warnings } = migrate({
      training: { run_id: "r" },
      system: { input: { warm_start: "w.ckpt" } },
    });
    expect(doc.checkpoint).toEqual({ source: "w.ckpt", loading: { type: "warm_start" } });
    expect(warnings[1]).toContain("training.run_id 'r' only named the run");
  });

  it("values of the wrong type are errors", () => {
    const error = migrationError({
      training: { load_weights_only: "yes", run_id: 12345, submodules_to_freeze: "encoder" },
    });
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toContain(
      "training.load_weights_only: expected true or false or null, got 'yes'",
    );
    expect(error.message).toContain(
      "training.run_id: expected a string or null, got 12345 (quote it in YAML)",
    );
    expect(error.message).toContain(
      "training.submodules_to_freeze: expected a list of names or null, got 'encoder'",
    );
  });

  it("notes a Hydra interpolation it cannot resolve", () => {
    const { warnings } = migrate({ training: { fork_run_id: `\${oc.env:RUN}` } });
    expect(warnings.some((w) => w.includes("training.fork_run_id is a Hydra interpolation"))).toBe(
      true,
    );
  });
});

describe("through the whole pipeline", () => {
  it("migrates, validates and resolves, returning the warning", () => {
    const text = [
      "training:",
      "  run_id: null",
      "  fork_run_id: abc123",
      "  load_weights_only: true",
      "  transfer_learning: true",
      "  submodules_to_freeze: [encoder]",
      "model: {width: 8}",
    ].join("\n");
    const { config, warnings } = parseConfigText(text, { file: "legacy.yaml" });
    expect(config.model).toEqual({ width: 8 });
    expect(config.checkpoint.source).toBe("abc123/last.ckpt");
    expect(config.checkpoint.loading).toMatchObject({
      type: "transfer_learning",
      strict: false,
      skip_mismatched: true,
      mismatch: "skip",
      freeze: ["encoder", "*.encoder.*"],
    });
    expect(warnings[0]).toContain(
      "deprecated: legacy anemoi-training keys (training.load_weights_only, training.transfer_learning, training.fork_run_id, training.submodules_to_freeze) were migrated;",
    );
    expect(warnings.at(-1)).toContain("training.run_id (null)");
  });

  it("overrides run before migration, so a legacy key can be overridden", () => {
    const { config } = parseConfigText("training:\n  run_id: null\n", {
      overrides: ["training.run_id=xyz"],
    });
    expect(config.checkpoint).toEqual({
      source: "xyz/last.ckpt",
      loading: resolveConfigDocument({ checkpoint: { loading: { type: "warm_start" } } }).checkpoint
        .loading,
    });
  });

  it("conflict errors name the file", () => {
    expect(() =>
      parseConfigText(
        "training: {load_weights_only: true}\ncheckpoint: {loading: {type: warm_start}}\n",
        {
          file: "both.yaml",
        },
      ),
    ).toThrow(/\[both\.yaml\]/);
  });
});

describe("input shape", () => {
  it("a document that is not a mapping is refused", () => {
    expect(() => migrateLegacyConfig(["training"])).toThrow(
      "(top level): expected a mapping, got a list.",
    );
  });
});
