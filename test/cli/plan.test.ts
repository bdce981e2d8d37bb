/**
 * `loadout plan`, run in-process through the real CLI entry point on the PyTorch-made fixtures.
 * Shapes and dtypes come from torch's record of each file (expected.json); training state,
 * optimizer and scheduler values too.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./run-cli.js";

const TORCH = join(import.meta.dirname, "../fixtures/torch");
const file = (name: string) => join(TORCH, name);

interface ExpectedFile {
  tensors: { path: (string | number)[]; dtype: string; shape: number[] }[];
  trainingState?: { epoch: number; global_step: number; best_model_score: number };
}
const EXPECTED = JSON.parse(readFileSync(file("expected.json"), "utf8")).files as Record<
  string,
  ExpectedFile
>;
/** The state-dict tensors torch found in a fixture: key → {dtype, shape}. */
function stateDictOf(
  name: string,
  root: string | null,
): Map<string, { dtype: string; shape: number[] }> {
  return new Map(
    EXPECTED[name]!.tensors.filter((t) =>
      root === null ? t.path.length === 1 : t.path[0] === root,
    ).map((t) => [String(t.path.at(-1)), { dtype: t.dtype, shape: t.shape }]),
  );
}
const NET = stateDictOf("net_state_dict.pt", null);
const NET_KEYS = [...NET.keys()];

const ENTRY_KEYS = [
  "action",
  "conversion",
  "frozen",
  "overlap",
  "reason",
  "source",
  "sourceDtype",
  "sourceShape",
  "target",
  "targetDtype",
  "targetShape",
];
const PLAN_KEYS = [
  "entries",
  "keyTransforms",
  "optimizer",
  "scheduler",
  "source",
  "strategy",
  "trainingState",
  "unexpected",
  "violations",
];

interface PlanJson {
  strategy: string;
  source: { file: string; format: string; stateDictPath: string[] };
  entries: Record<string, unknown>[];
  unexpected: Record<string, unknown>[];
  keyTransforms: unknown[];
  trainingState: { action: string; reason: string; value: Record<string, unknown> };
  optimizer: Record<string, unknown> | null;
  scheduler: Record<string, unknown> | null;
  violations: string[];
}

async function planJson(args: string[]): Promise<{ code: number; plan: PlanJson; stderr: string }> {
  const { code, stdout, stderr } = await runCli(["plan", "--json", ...args]);
  expect(stdout.endsWith("}\n")).toBe(true);
  expect(stdout.trim().split("\n")).toHaveLength(1);
  const plan = JSON.parse(stdout) as PlanJson;
  expect(Object.keys(plan).sort()).toEqual(PLAN_KEYS);
  for (const entry of plan.entries) expect(Object.keys(entry).sort()).toEqual(ENTRY_KEYS);
  return { code, plan, stderr };
}

const set = (key: string, value: string) => ["--set", `checkpoint.loading.${key}=${value}`];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "loadout-plan-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadout plan --json", () => {
  it("weights_only (the default): one load entry per tensor, shapes and dtypes as torch saw them", async () => {
    const { code, plan } = await planJson([
      "--source",
      file("net_state_dict.pt"),
      "--target",
      file("net_fresh.pt"),
    ]);
    expect(code).toBe(0);
    expect(plan.strategy).toBe("weights_only");
    expect(plan.source).toEqual({
      file: file("net_state_dict.pt"),
      format: "torch-zip",
      stateDictPath: [],
    });
    expect(plan.entries).toEqual(
      NET_KEYS.map((key) => ({
        target: key,
        source: key,
        action: "load",
        reason: "same name and shape",
        sourceShape: NET.get(key)!.shape,
        targetShape: NET.get(key)!.shape,
        sourceDtype: NET.get(key)!.dtype,
        targetDtype: NET.get(key)!.dtype,
        conversion: null,
        overlap: null,
        frozen: false,
      })),
    );
    expect(plan.unexpected).toEqual([]);
    expect(plan.keyTransforms).toEqual([]);
    // Neither file has optimizer or scheduler state: no such targets.
    expect(plan.optimizer).toBeNull();
    expect(plan.scheduler).toBeNull();
    expect(plan.trainingState).toMatchObject({
      action: "keep",
      value: { epoch: 0, globalStep: 0, bestMetric: null, metricsHistory: [] },
    });
    expect(plan.violations).toEqual([]);
  });

  it("weights_only into a wider head: exit code 1 and the mismatches as violations", async () => {
    const { code, plan } = await planJson([
      "--source",
      file("net_state_dict.pt"),
      "--target",
      file("net_wide_fresh.pt"),
    ]);
    expect(code).toBe(1);
    expect(plan.violations).toEqual([
      "shape mismatch for 'head.weight': checkpoint [10, 16] vs model [12, 16]",
      "shape mismatch for 'head.bias': checkpoint [10] vs model [12]",
    ]);
    expect(plan.entries.find((e) => e.target === "head.weight")).toMatchObject({
      action: "skip",
      sourceShape: [10, 16],
      targetShape: [12, 16],
    });
  });

  it("transfer_learning into a wider head: skipped, exit 0; with overlap and freeze_loaded", async () => {
    const base = ["--source", file("net_state_dict.pt"), "--target", file("net_wide_fresh.pt")];
    const skip = await planJson([...base, ...set("type", "transfer_learning")]);
    expect(skip.code).toBe(0);
    expect(skip.plan.strategy).toBe("transfer_learning");
    const head = skip.plan.entries.filter((e) => String(e.target).startsWith("head."));
    expect(head.map((e) => [e.action, e.reason])).toEqual([
      ["skip", "shape mismatch (checkpoint [10, 16] vs model [12, 16]): skipped"],
      ["skip", "shape mismatch (checkpoint [10] vs model [12]): skipped"],
    ]);
    expect(skip.plan.trainingState.action).toBe("reset");

    const overlap = await planJson([
      ...base,
      ...set("type", "transfer_learning"),
      ...set("mismatch", "overlap"),
      ...set("freeze_loaded", "true"),
    ]);
    expect(overlap.code).toBe(0);
    const byTarget = new Map(overlap.plan.entries.map((e) => [e.target, e]));
    expect(byTarget.get("head.weight")).toMatchObject({ action: "load", overlap: [10, 16] });
    expect(byTarget.get("head.bias")).toMatchObject({ action: "load", overlap: [10] });
    // Every loaded parameter is frozen; buffers never are.
    for (const key of NET_KEYS) {
      const buffer = /running_|num_batches/.test(key);
      expect(byTarget.get(key)!.frozen, key).toBe(!buffer);
    }
  });

  it("warm_start from a Lightning checkpoint: optimizer, scheduler and training state restored", async () => {
    const { code, plan } = await planJson([
      "--source",
      file("lightning.ckpt"),
      "--target",
      file("net_fresh.pt"),
      ...set("type", "warm_start"),
    ]);
    expect(code).toBe(0);
    expect(plan.source.stateDictPath).toEqual(["state_dict"]);
    expect(plan.keyTransforms).toEqual([{ from: "model.", to: "", count: 13 }]);
    expect(plan.entries.map((e) => [e.target, e.source, e.action])).toEqual(
      NET_KEYS.map((key) => [key, `model.${key}`, "load"]),
    );
    const params = NET_KEYS.filter((k) => !/running_|num_batches/.test(k));
    expect(plan.optimizer).toMatchObject({
      action: "restore",
      mapping: "param_names",
      type: "Adam-like",
      sourcePath: ["optimizer_states", 0],
      entries: params.map((param, sourceIndex) => ({
        param,
        sourceIndex,
        fields: ["step", "exp_avg", "exp_avg_sq"],
      })),
    });
    expect(plan.scheduler).toMatchObject({ action: "restore", sourcePath: ["lr_schedulers", 0] });
    const saved = EXPECTED["lightning.ckpt"]!.trainingState!;
    expect(plan.trainingState).toEqual({
      action: "restore",
      reason: "from the lightning record",
      value: {
        epoch: saved.epoch,
        globalStep: saved.global_step,
        bestMetric: saved.best_model_score,
        metricsHistory: [],
      },
    });
  });

  it("warm_start from an older Lightning checkpoint maps the optimizer by parameter order", async () => {
    const { plan } = await planJson([
      "--source",
      file("lightning_no_param_names.ckpt"),
      "--target",
      file("net_fresh.pt"),
      ...set("type", "warm_start"),
    ]);
    expect(plan.optimizer).toMatchObject({ action: "restore", mapping: "parameter_order" });
    expect(plan.violations).toEqual([]);
  });

  it("cold_start from a config file: anemoi's checkpoint, the head reset, pre-processors excluded", async () => {
    const config = join(dir, "cold.yaml");
    await writeFile(
      config,
      "checkpoint:\n  loading:\n    type: cold_start\n    reset_layers: [head]\n    exclude: [model.pre_processors]\n",
    );
    const { code, plan } = await planJson([
      "--source",
      file("anemoi.ckpt"),
      "--target",
      file("net_fresh.pt"),
      "--config",
      config,
    ]);
    expect(code).toBe(0);
    expect(plan.strategy).toBe("cold_start");
    expect(plan.keyTransforms).toEqual([{ from: "model.model.", to: "", count: 13 }]);
    expect(
      plan.entries.filter((e) => e.action === "reset").map((e) => [e.target, e.source]),
    ).toEqual([
      ["head.weight", "model.model.head.weight"],
      ["head.bias", "model.model.head.bias"],
    ]);
    expect(plan.unexpected).toEqual([
      {
        source: "model.pre_processors.era5.normalizer._norm_mul",
        shape: [5],
        dtype: "float32",
        reason: "excluded by include/exclude",
      },
      {
        source: "model.pre_processors.era5.normalizer._norm_add",
        shape: [5],
        dtype: "float32",
        reason: "excluded by include/exclude",
      },
    ]);
    expect(plan.optimizer).toMatchObject({ action: "reset", entries: [] });
    expect(plan.scheduler).toMatchObject({ action: "reset" });
    expect(plan.trainingState).toMatchObject({
      action: "reset",
      value: { epoch: 0, globalStep: 0, bestMetric: null, metricsHistory: [] },
    });
  });

  it("cold_start with a reset_layers typo: exit code 1, the pattern named", async () => {
    const { code, plan } = await planJson([
      "--source",
      file("net_state_dict.pt"),
      "--target",
      file("net_fresh.pt"),
      ...set("type", "cold_start"),
      ...set("reset_layers", "[haed]"),
    ]);
    expect(code).toBe(1);
    expect(plan.violations).toEqual([
      "reset_layers pattern 'haed' matches no parameter of the model (a typo would silently reset nothing)",
    ]);
  });

  it("dtype conversion shows in each entry", async () => {
    const { plan } = await planJson([
      "--source",
      join(TORCH, "../strategies/net_bfloat16.pt"),
      "--target",
      file("net_fresh.pt"),
    ]);
    expect(plan.entries[0]).toMatchObject({
      sourceDtype: "bfloat16",
      targetDtype: "float32",
      conversion: { from: "bfloat16", to: "float32", lossy: false },
    });
  });
});

describe("loadout plan (human view)", () => {
  it("summarises an applicable plan and exits 0", async () => {
    const { code, stdout } = await runCli([
      "plan",
      "--source",
      file("net_state_dict.pt"),
      "--target",
      file("net_fresh.pt"),
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain("weights_only:");
    expect(stdout).toContain("13 load, 0 skip, 0 reset, 0 keep, 0 missing");
    expect(stdout).toContain("The plan can be applied.");
  });

  it("lists the problems of a plan that cannot be applied and exits 1", async () => {
    const { code, stdout } = await runCli([
      "plan",
      "--source",
      file("net_state_dict.pt"),
      "--target",
      file("net_wide_fresh.pt"),
    ]);
    expect(code).toBe(1);
    expect(stdout).toContain("Cannot apply (2 problem(s))");
    expect(stdout).toContain(
      "shape mismatch for 'head.weight': checkpoint [10, 16] vs model [12, 16]",
    );
  });

  it("a misspelt strategy is a usage error (exit 2) with a suggestion", async () => {
    const { code, stdout, stderr } = await runCli([
      "plan",
      "--source",
      file("net_state_dict.pt"),
      "--target",
      file("net_fresh.pt"),
      ...set("type", "warm_strat"),
    ]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("warm_start");
  });
});
