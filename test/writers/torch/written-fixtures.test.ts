import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { scalarOf } from "../../../src/checkpoint/training-counters.js";
import { getPath, listTensors, type TreePath } from "../../../src/checkpoint/tree.js";
import type { PyValue } from "../../../src/formats/pickle/values.js";
import { readTrainingState } from "../../../src/state/read-training-state.js";
import {
  findOptimizerStates,
  parseTorchOptimizerState,
} from "../../../src/state/torch-optimizer.js";
import { findSchedulerStates, toSchedulerState } from "../../../src/state/torch-scheduler.js";
import { Tensor } from "../../../src/tensors/tensor.js";
import { buildWrittenFixtures } from "../../fixtures/written/build.js";
import { openBytes, sha256, tensorData } from "./helpers.js";

/**
 * test/fixtures/written/: checkpoints loadout wrote, and what PyTorch loaded from them
 * (expected.json, by record-expectations.py). The writer must still produce these exact bytes,
 * so torch's verdict stays about what loadout writes today; and loadout's reader must agree
 * with torch about every tensor and field.
 *
 * To regenerate after an intended change of the writer's output:
 *   LOADOUT_WRITE_FIXTURES=1 npx vitest run test/writers/torch/written-fixtures.test.ts
 *   /tmp/tv/bin/python test/fixtures/written/record-expectations.py
 */

const folder = new URL("../../fixtures/written/", import.meta.url);

interface ExpectedTensor {
  path: TreePath;
  dtype: string;
  shape: number[];
  sha256: string;
  sameAs?: TreePath;
}

interface ExpectedFile {
  bytes: number;
  sha256: string;
  tensors: ExpectedTensor[];
  training?: {
    keys: string[];
    epoch: number;
    global_step: number;
    "pytorch-lightning_version": string;
    callbacks: Record<
      string,
      { monitor: string; best_model_score: { value: number }; best_model_path: string }
    >;
    param_groups: Record<string, unknown>[];
    steps: Record<string, number>;
    lr_schedulers: Record<string, unknown>[];
    types: {
      param_groups: Record<string, string>[];
      lr_scheduler: Record<string, string>;
      best_metric: string;
    };
    loadout: {
      param_order: string[];
      training_state: {
        epoch: number;
        global_step: number;
        best_metric: number | null;
        metrics_history: [number, string, number][];
      };
    };
  };
}

interface Expected {
  torch: string;
  files: Record<string, ExpectedFile>;
}

describe("checkpoints loadout wrote, as torch loaded them", async () => {
  const built = await buildWrittenFixtures();
  if (process.env.LOADOUT_WRITE_FIXTURES === "1") {
    for (const [name, bytes] of built) writeFileSync(new URL(name, folder), bytes);
  }
  // Read after writing: regenerating starts from files without expectations.
  const expected = JSON.parse(readFileSync(new URL("expected.json", folder), "utf8")) as Expected;

  it("are all recorded in expected.json", () => {
    expect([...built.keys()].sort()).toEqual(Object.keys(expected.files).sort());
  });

  for (const [name, bytes] of built) {
    const committed = readFileSync(new URL(name, folder));
    const record = expected.files[name]!;

    it(`${name}: the writer still produces the committed bytes, the ones torch judged`, () => {
      expect(sha256(committed)).toBe(record.sha256);
      expect(bytes.byteLength).toBe(committed.byteLength);
      expect(sha256(bytes)).toBe(sha256(committed));
    });

    it(`${name}: loadout's reader finds every tensor torch found, bit for bit`, async () => {
      const checkpoint = await openBytes(committed, name);
      expect(listTensors(checkpoint.root).map((t) => t.path)).toEqual(
        record.tensors.map((t) => t.path),
      );
      for (const want of record.tensors) {
        const tensor = getPath(checkpoint.root, want.path);
        expect(tensor).toBeInstanceOf(Tensor);
        const t = tensor as Tensor;
        expect([t.dtype, t.shape]).toEqual([want.dtype, want.shape]);
        expect(sha256(await tensorData(t))).toBe(want.sha256);
        if (want.sameAs) expect(getPath(checkpoint.root, want.sameAs)).toBe(t);
      }
    });
  }

  it("training.ckpt: loadout's reader agrees with torch on every training field", async () => {
    const training = expected.files["training.ckpt"]!.training!;
    const checkpoint = await openBytes(
      readFileSync(new URL("training.ckpt", folder)),
      "training.ckpt",
    );
    const root = checkpoint.root as Map<string, PyValue>;
    expect([...root.keys()]).toEqual(training.keys);
    expect(root.get("epoch")).toBe(training.epoch);
    expect(root.get("global_step")).toBe(training.global_step);
    expect(root.get("pytorch-lightning_version")).toBe(training["pytorch-lightning_version"]);

    const state = await readTrainingState(checkpoint);
    const record = training.loadout.training_state;
    expect(state.origin).toBe("loadout");
    expect(state.state).toEqual({
      epoch: record.epoch,
      globalStep: record.global_step,
      bestMetric: record.best_metric,
      metricsHistory: record.metrics_history.map(([step, name, value]) => ({ step, name, value })),
    });

    const callbacks = root.get("callbacks") as Map<string, Map<string, PyValue>>;
    expect([...callbacks.keys()]).toEqual(Object.keys(training.callbacks));
    for (const [key, callback] of callbacks) {
      expect(await scalarOf(callback.get("best_model_score"))).toBe(
        training.callbacks[key]!.best_model_score.value,
      );
      expect(callback.get("monitor")).toBe(training.callbacks[key]!.monitor);
    }

    const found = findOptimizerStates(checkpoint.root)[0]!;
    const parsed = parseTorchOptimizerState(found.value, found.path);
    parsed.groups.forEach((group, g) => {
      const { params, param_names, ...hyper } = training.param_groups[g]!;
      expect(group.indices).toEqual(params);
      expect(group.paramNames).toEqual(param_names);
      expect(group.hyper).toEqual(hyper);
    });
    expect(parsed.groups.flatMap((g) => g.paramNames)).toEqual(training.loadout.param_order);
    for (const [index, entry] of parsed.state) {
      expect(await scalarOf(entry.scalars.step as PyValue)).toBe(training.steps[String(index)]);
    }

    // Whole numbers torch keeps as floats were written as floats (torch saw their Python types).
    expect(training.types.param_groups[1]).toMatchObject({
      lr: "float",
      weight_decay: "float",
      betas: "tuple",
    });
    expect(training.types.lr_scheduler).toMatchObject({
      T_max: "int",
      eta_min: "float",
      last_epoch: "int",
    });
    expect(training.types.best_metric).toBe("float");

    const scheduler = findSchedulerStates(checkpoint.root)[0]!;
    expect(await toSchedulerState(scheduler.value, scheduler.path)).toEqual(
      training.lr_schedulers[0],
    );
  });
});
