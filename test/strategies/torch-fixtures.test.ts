import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Checkpoint } from "../../src/checkpoint/checkpoint.js";
import { openCheckpointFile } from "../../src/node.js";
import { runLoad } from "../../src/pipeline/load.js";
import { modelFromStateDict } from "../../src/targets/from-state-dict.js";
import { type MemoryModel, MemoryOptimizer, MemoryScheduler } from "../../src/targets/memory.js";
import type { Targets } from "../../src/targets/types.js";
import { loading, RUN_STATE } from "./helpers.js";

/**
 * Loads between PyTorch-made checkpoints (test/fixtures/torch, test/fixtures/strategies). What
 * each tensor must hold afterwards is what torch read from the files: every element, recorded
 * by test/fixtures/strategies/generate.py in values.json, and the sums and first elements of
 * test/fixtures/torch/expected.json.
 */

const FIXTURES = join(import.meta.dirname, "../fixtures");
const TORCH = join(FIXTURES, "torch");
const STRATEGIES = join(FIXTURES, "strategies");

interface ValuesEntry {
  sha256: string;
  tensors: Record<
    string,
    { dtype: string; shape: number[]; values: number[]; asFloat32?: number[] }
  >;
  optimizer?: Record<
    string,
    { name: string; step: number; exp_avg: number[]; exp_avg_sq: number[] }
  >;
}
const VALUES = JSON.parse(readFileSync(join(STRATEGIES, "values.json"), "utf8")) as {
  files: Record<string, ValuesEntry>;
};
interface ExpectedTensor {
  path: (string | number)[];
  sum: number;
  first: number[];
}
interface ExpectedFile {
  tensors: ExpectedTensor[];
  trainingState?: { epoch: number; global_step: number; best_model_score: number };
  optimizer?: { paramGroups: Record<string, unknown>[] };
  lrSchedulers?: Record<string, unknown>[];
}
const EXPECTED = JSON.parse(readFileSync(join(TORCH, "expected.json"), "utf8")) as {
  files: Record<string, ExpectedFile>;
};

/** torch's values of one state-dict tensor of a fixture, by the file's key in values.json. */
const torchValues = (file: string, key: string) => VALUES.files[file]!.tensors[key]!.values;
const NET = "torch/net_state_dict.pt";
const NET_KEYS = Object.keys(VALUES.files[NET]!.tensors);

const opened: Checkpoint[] = [];
async function open(path: string): Promise<Checkpoint> {
  const checkpoint = await openCheckpointFile(path);
  opened.push(checkpoint);
  return checkpoint;
}
afterAll(async () => {
  await Promise.all(opened.map((c) => c.close()));
});

/** The model a fixture's state dict describes, as `loadout load --target` makes it. */
async function modelOf(file: string): Promise<MemoryModel> {
  return modelFromStateDict((await open(file)).stateDict()!.tensors);
}

async function numbers(targets: Targets, name: string): Promise<number[]> {
  return Array.from(await targets.model.read(name), Number);
}

/** Every tensor of the target equals torch's values of the source under `prefix`. */
async function expectNetValues(targets: Targets, file: string, prefix = ""): Promise<void> {
  for (const key of NET_KEYS) {
    expect(await numbers(targets, key), key).toEqual(torchValues(file, prefix + key));
  }
}

describe("values.json was recorded from these files", () => {
  for (const [name, entry] of Object.entries(VALUES.files)) {
    it(name, () => {
      const data = readFileSync(join(FIXTURES, name));
      expect(createHash("sha256").update(data).digest("hex")).toBe(entry.sha256);
    });
  }
});

describe("weights_only on PyTorch-made files", () => {
  it("a fresh-init target gets exactly the source file's tensors", async () => {
    const model = await modelOf(join(TORCH, "net_fresh.pt"));
    const targets = { model };
    await expectNetValues(targets, "torch/net_fresh.pt");
    const { report } = await runLoad({
      checkpoint: await open(join(TORCH, "net_state_dict.pt")),
      targets,
      config: loading("weights_only"),
    });
    expect(report.plan!.entries.every((e) => e.action === "load")).toBe(true);
    await expectNetValues(targets, NET);
  });

  const sameWeights: [string, string | null][] = [
    ["net_legacy.pt", null],
    ["net_bigendian.pt", null],
    ["net_protocol2.pt", null],
    ["net_protocol4.pt", null],
    ["net_module_prefix.pt", "module."],
    ["net_orig_mod_prefix.pt", "_orig_mod."],
  ];
  for (const [file, prefix] of sameWeights) {
    it(`${file} loads into a bare Net with the seed-0 weights`, async () => {
      const targets = { model: await modelOf(join(TORCH, "net_fresh.pt")) };
      const { report } = await runLoad({
        checkpoint: await open(join(TORCH, file)),
        targets,
        config: loading("weights_only"),
      });
      const plan = report.plan!;
      expect(plan.violations).toEqual([]);
      expect(plan.keyTransforms).toEqual(prefix ? [{ from: prefix, to: "", count: 13 }] : []);
      expect(plan.entries.map((e) => e.source)).toEqual(NET_KEYS.map((k) => (prefix ?? "") + k));
      await expectNetValues(targets, NET);
    });
  }

  it("bare weights load into a Lightning-named model (`model.` added)", async () => {
    const targets = { model: await modelOf(join(TORCH, "lightning.ckpt")) };
    const { report } = await runLoad({
      checkpoint: await open(join(TORCH, "net_state_dict.pt")),
      targets,
      config: loading("weights_only"),
    });
    expect(report.plan!.keyTransforms).toEqual([{ from: "", to: "model.", count: 13 }]);
    for (const key of NET_KEYS) {
      expect(await numbers(targets, `model.${key}`)).toEqual(torchValues(NET, key));
    }
  });
});

describe("dtype conversion from PyTorch-made float64, float16 and bfloat16 files", () => {
  /** float16 bits as a number: sign, 5-bit exponent (bias 15), 10-bit fraction. */
  const half = (bits: number) => {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) return sign * fraction * 2 ** -24;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  };
  const bfloat16 = (bits: number) => {
    const view = new DataView(new ArrayBuffer(4));
    view.setUint32(0, bits << 16);
    return view.getFloat32(0);
  };
  const cases = [
    { dtype: "float64", fromSource: (v: number) => Math.fround(v), lossy: true },
    { dtype: "float16", fromSource: half, lossy: false },
    { dtype: "bfloat16", fromSource: bfloat16, lossy: false },
  ] as const;

  for (const { dtype, fromSource, lossy } of cases) {
    it(`net_${dtype}.pt into a float32 Net: torch's .float(), and arithmetic on the stored values`, async () => {
      const file = `strategies/net_${dtype}.pt`;
      const checkpoint = await open(join(STRATEGIES, `net_${dtype}.pt`));
      const targets = { model: await modelOf(join(TORCH, "net_fresh.pt")) };
      const { report } = await runLoad({ checkpoint, targets, config: loading("weights_only") });
      for (const entry of report.plan!.entries) {
        const integer = entry.targetDtype === "int64";
        expect(entry.conversion, entry.target).toEqual(
          integer ? null : { from: dtype, to: "float32", lossy },
        );
        if (integer) continue;
        const got = await numbers(targets, entry.target);
        expect(got, entry.target).toEqual(VALUES.files[file]!.tensors[entry.target]!.asFloat32);
        // Independently: the stored elements (raw bits for 16-bit floats) converted by hand.
        const stored = Array.from(
          await checkpoint.stateDict()!.tensors.get(entry.target)!.read(),
          Number,
        );
        expect(got).toEqual(stored.map(fromSource));
      }
    });
  }
});

describe("transfer_learning on PyTorch-made files", () => {
  const source = () => open(join(TORCH, "net_state_dict.pt"));

  it("a wider head (NetWide) is skipped and keeps its fresh init; the rest loads", async () => {
    const targets = { model: await modelOf(join(TORCH, "net_wide_fresh.pt")) };
    const { report } = await runLoad({
      checkpoint: await source(),
      targets,
      config: loading("transfer_learning"),
    });
    const skipped = report.plan!.entries.filter((e) => e.action === "skip");
    expect(skipped.map((e) => [e.target, e.sourceShape, e.targetShape])).toEqual([
      ["head.weight", [10, 16], [12, 16]],
      ["head.bias", [10], [12]],
    ]);
    for (const key of NET_KEYS) {
      const from = key.startsWith("head.") ? "torch/net_wide_fresh.pt" : NET;
      expect(await numbers(targets, key), key).toEqual(torchValues(from, key));
    }
  });

  /** Element (r, c) of a [rows, cols] target after an overlap load from a [sRows, sCols] source. */
  function overlap2d(
    sourceValues: number[],
    [sRows, sCols]: number[],
    targetValues: number[],
    [rows, cols]: number[],
  ): number[] {
    const out: number[] = [];
    for (let r = 0; r < rows!; r++) {
      for (let c = 0; c < cols!; c++) {
        out.push(
          r < sRows! && c < sCols! ? sourceValues[r * sCols! + c]! : targetValues[r * cols! + c]!,
        );
      }
    }
    return out;
  }

  it("mismatch: overlap grows the head: rows 0-9 from the checkpoint, rows 10-11 keep their init", async () => {
    const wide = "torch/net_wide_fresh.pt";
    const targets = { model: await modelOf(join(TORCH, "net_wide_fresh.pt")) };
    await runLoad({
      checkpoint: await source(),
      targets,
      config: loading("transfer_learning", { mismatch: "overlap" }),
    });
    expect(await numbers(targets, "head.weight")).toEqual(
      overlap2d(
        torchValues(NET, "head.weight"),
        [10, 16],
        torchValues(wide, "head.weight"),
        [12, 16],
      ),
    );
    const bias = await numbers(targets, "head.bias");
    expect(bias.slice(0, 10)).toEqual(torchValues(NET, "head.bias"));
    expect(bias.slice(10)).toEqual(torchValues(wide, "head.bias").slice(10));
  });

  it("mismatch: overlap shrinks the head: the checkpoint's first 10 rows", async () => {
    const targets = { model: await modelOf(join(TORCH, "net_fresh.pt")) };
    await runLoad({
      checkpoint: await open(join(TORCH, "net_wide_fresh.pt")),
      targets,
      config: loading("transfer_learning", { mismatch: "overlap" }),
    });
    const wide = "torch/net_wide_fresh.pt";
    expect(await numbers(targets, "head.weight")).toEqual(
      torchValues(wide, "head.weight").slice(0, 10 * 16),
    );
    expect(await numbers(targets, "head.bias")).toEqual(
      torchValues(wide, "head.bias").slice(0, 10),
    );
  });

  it("mismatch: overlap adds an input channel: channels 0-2 from the checkpoint, 3 keeps its init", async () => {
    const widein = "torch/net_widein_fresh.pt";
    const targets = { model: await modelOf(join(TORCH, "net_widein_fresh.pt")) };
    const { report } = await runLoad({
      checkpoint: await source(),
      targets,
      config: loading("transfer_learning", { mismatch: "overlap" }),
    });
    expect(report.plan!.entries[0]).toMatchObject({
      target: "conv.weight",
      sourceShape: [8, 3, 3, 3],
      targetShape: [8, 4, 3, 3],
      overlap: [8, 3, 3, 3],
    });
    const got = await numbers(targets, "conv.weight");
    const from = torchValues(NET, "conv.weight");
    const fresh = torchValues(widein, "conv.weight");
    for (let o = 0; o < 8; o++) {
      for (let i = 0; i < 4; i++) {
        for (let k = 0; k < 9; k++) {
          const t = (o * 4 + i) * 9 + k;
          expect(got[t]).toBe(i < 3 ? from[(o * 3 + i) * 9 + k] : fresh[t]);
        }
      }
    }
    expect(await numbers(targets, "fc.weight")).toEqual(torchValues(NET, "fc.weight"));
  });
});

describe("Lightning checkpoints", () => {
  const expected = EXPECTED.files["lightning.ckpt"]!;
  const torchOptimizer = VALUES.files["torch/lightning.ckpt"]!.optimizer!;

  async function netTargets(): Promise<Targets> {
    const model = await modelOf(join(TORCH, "net_fresh.pt"));
    const params = model.parameters();
    const names = params.filter((p) => p.kind === "parameter").map((p) => p.name);
    return {
      model,
      optimizer: new MemoryOptimizer("AdamW", [{ params: names, hyper: { lr: 1 } }], { params }),
      scheduler: new MemoryScheduler("CosineAnnealingLR", { last_epoch: 0 }),
    };
  }

  for (const file of ["lightning.ckpt", "lightning_no_param_names.ckpt"]) {
    it(`warm_start from ${file} into a bare Net restores everything torch saved`, async () => {
      const targets = await netTargets();
      const { trainingState, report } = await runLoad({
        checkpoint: await open(join(TORCH, file)),
        targets,
        config: loading("warm_start"),
        trainingState: RUN_STATE,
      });
      const plan = report.plan!;
      expect(plan.optimizer!.mapping).toBe(
        file === "lightning.ckpt" ? "param_names" : "parameter_order",
      );
      for (const key of NET_KEYS) {
        expect(await numbers(targets, key), key).toEqual(
          torchValues("torch/lightning.ckpt", `model.${key}`),
        );
      }

      const state = targets.optimizer!.getState();
      const { params, param_names, ...hyper } = EXPECTED.files[file]!.optimizer!.paramGroups[0]!;
      expect(state.groups).toEqual([
        { params: (params as number[]).map((i) => torchOptimizer[i]!.name.slice(6)), hyper },
      ]);
      expect(param_names === undefined).toBe(file !== "lightning.ckpt");
      for (const entry of Object.values(torchOptimizer)) {
        const restored = state.state.get(entry.name.slice("model.".length))!;
        expect(restored.scalars).toEqual({ step: entry.step });
        expect(Array.from(restored.tensors.get("exp_avg") as Float32Array)).toEqual(entry.exp_avg);
        expect(Array.from(restored.tensors.get("exp_avg_sq") as Float32Array)).toEqual(
          entry.exp_avg_sq,
        );
      }

      expect(targets.scheduler!.getState()).toEqual(expected.lrSchedulers![0]);
      expect(trainingState).toEqual({
        epoch: expected.trainingState!.epoch,
        globalStep: expected.trainingState!.global_step,
        bestMetric: expected.trainingState!.best_model_score,
        metricsHistory: [],
      });
    });
  }

  it("warm_start into a wider head fails listing what differs, and changes nothing", async () => {
    const model = await modelOf(join(TORCH, "net_wide_fresh.pt"));
    const params = model.parameters();
    const names = params.filter((p) => p.kind === "parameter").map((p) => p.name);
    const optimizer = new MemoryOptimizer("AdamW", [{ params: names, hyper: {} }], { params });
    const before = model.snapshot();
    const error = await runLoad({
      checkpoint: await open(join(TORCH, "lightning.ckpt")),
      targets: { model, optimizer },
      config: loading("warm_start"),
    }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain(
      "shape mismatch for 'head.weight': checkpoint [10, 16] vs model [12, 16]",
    );
    expect(message).toContain("shape mismatch for 'head.bias': checkpoint [10] vs model [12]");
    expect(message).toContain("state 8 exp_avg has shape [10, 16] but 'head.weight' has [12, 16]");
    expect(model.snapshot()).toEqual(before);
    expect(optimizer.getState().state.size).toBe(0);
  });

  it("into a Lightning-named model, the names match as they are", async () => {
    const targets = { model: await modelOf(join(TORCH, "lightning.ckpt")) };
    const { report } = await runLoad({
      checkpoint: await open(join(TORCH, "lightning.ckpt")),
      targets: { model: targets.model },
      config: loading("weights_only"),
    });
    expect(report.plan!.keyTransforms).toEqual([]);
    expect(report.plan!.entries.every((e) => e.reason === "same name and shape")).toBe(true);
    for (const key of NET_KEYS) {
      expect(await numbers(targets, `model.${key}`)).toEqual(
        torchValues("torch/lightning.ckpt", `model.${key}`),
      );
    }
  });
});

describe("the anemoi checkpoint (model.model. keys, pickled foreign classes)", () => {
  const expected = EXPECTED.files["anemoi.ckpt"]!;
  const anemoiTensor = (key: string) =>
    expected.tensors.find((t) => t.path[0] === "state_dict" && t.path[1] === key)!;
  const exclude = { exclude: ["model.pre_processors"] };

  async function expectAnemoiWeights(targets: Targets, keys: string[]) {
    for (const key of keys) {
      const values = await numbers(targets, key);
      const want = anemoiTensor(`model.model.${key}`);
      expect(values.slice(0, 8), key).toEqual(want.first);
      expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(want.sum, 12);
    }
  }

  it("opens with its foreign classes as inert objects", async () => {
    const checkpoint = await open(join(TORCH, "anemoi.ckpt"));
    expect(checkpoint.opaqueClasses.has("omegaconf.dictconfig.DictConfig")).toBe(true);
    expect(
      checkpoint.opaqueClasses.has("anemoi.models.data_indices.collection.IndexCollection"),
    ).toBe(true);
  });

  it("cold_start into a bare Net, the pre-processors excluded", async () => {
    const targets = { model: await modelOf(join(TORCH, "net_fresh.pt")) };
    const { trainingState, report } = await runLoad({
      checkpoint: await open(join(TORCH, "anemoi.ckpt")),
      targets,
      config: loading("cold_start", { ...exclude, reset_layers: ["head"] }),
      trainingState: RUN_STATE,
    });
    const plan = report.plan!;
    expect(plan.violations).toEqual([]);
    expect(plan.keyTransforms).toEqual([{ from: "model.model.", to: "", count: 13 }]);
    expect(plan.unexpected.map((u) => [u.source, u.reason])).toEqual([
      ["model.pre_processors.era5.normalizer._norm_mul", "excluded by include/exclude"],
      ["model.pre_processors.era5.normalizer._norm_add", "excluded by include/exclude"],
    ]);
    expect(plan.entries.filter((e) => e.action === "reset").map((e) => e.target)).toEqual([
      "head.weight",
      "head.bias",
    ]);
    await expectAnemoiWeights(
      targets,
      NET_KEYS.filter((k) => !k.startsWith("head.")),
    );
    // Reset: the target's own (fresh-init) values, which this model cannot re-draw.
    expect(await numbers(targets, "head.weight")).toEqual(
      torchValues("torch/net_fresh.pt", "head.weight"),
    );
    expect(trainingState).toEqual({
      epoch: 0,
      globalStep: 0,
      bestMetric: null,
      metricsHistory: [],
    });
  });

  it("without the exclude, the strict load fails naming the pre-processor keys", async () => {
    const targets = { model: await modelOf(join(TORCH, "net_fresh.pt")) };
    const before = targets.model.snapshot();
    const error = await runLoad({
      checkpoint: await open(join(TORCH, "anemoi.ckpt")),
      targets,
      config: loading("cold_start"),
    }).catch((e: Error) => e);
    expect((error as Error).message).toContain("'model.pre_processors.era5.normalizer._norm_mul'");
    expect(targets.model.snapshot()).toEqual(before);
  });

  it("transfer_learning into a wider head, the pre-processors excluded", async () => {
    const targets = { model: await modelOf(join(TORCH, "net_wide_fresh.pt")) };
    const { report } = await runLoad({
      checkpoint: await open(join(TORCH, "anemoi.ckpt")),
      targets,
      config: loading("transfer_learning", exclude),
    });
    expect(report.plan!.entries.filter((e) => e.action === "skip").map((e) => e.target)).toEqual([
      "head.weight",
      "head.bias",
    ]);
    await expectAnemoiWeights(
      targets,
      NET_KEYS.filter((k) => !k.startsWith("head.")),
    );
  });

  it("warm_start resumes at the epoch and step anemoi's Lightning checkpoint records", async () => {
    const model = await modelOf(join(TORCH, "net_fresh.pt"));
    const params = model.parameters();
    const names = params.filter((p) => p.kind === "parameter").map((p) => p.name);
    const targets = {
      model,
      optimizer: new MemoryOptimizer("AdamW", [{ params: names, hyper: {} }], { params }),
      scheduler: new MemoryScheduler("LinearLR", {}),
    };
    const { trainingState, report } = await runLoad({
      checkpoint: await open(join(TORCH, "anemoi.ckpt")),
      targets,
      config: loading("warm_start", exclude),
    });
    expect(report.plan!.optimizer!.mapping).toBe("param_names");
    expect(trainingState).toEqual({
      epoch: expected.trainingState!.epoch,
      globalStep: expected.trainingState!.global_step,
      bestMetric: expected.trainingState!.best_model_score,
      metricsHistory: [],
    });
    expect(targets.scheduler.getState()).toEqual(expected.lrSchedulers![0]);
    await expectAnemoiWeights(targets, NET_KEYS);
  });
});
