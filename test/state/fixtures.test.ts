import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Checkpoint } from "../../src/checkpoint/checkpoint.js";
import { LoadoutError } from "../../src/errors.js";
import { openCheckpointFile } from "../../src/node.js";
import { readTrainingState } from "../../src/state/read-training-state.js";
import {
  describeOptimizer,
  findOptimizerStates,
  mapOptimizerToNames,
  parseTorchOptimizerState,
  summarizeOptimizer,
  toOptimizerState,
} from "../../src/state/torch-optimizer.js";
import { findSchedulerStates, toSchedulerState } from "../../src/state/torch-scheduler.js";
import { modelFromStateDict } from "../../src/targets/from-state-dict.js";
import { MemoryOptimizer, MemoryScheduler } from "../../src/targets/memory.js";
import type { ParameterInfo } from "../../src/targets/types.js";

/** Checkpoints written by real PyTorch 2.13, and what torch itself read from them (expected.json). */
const FIXTURES = join(import.meta.dirname, "../fixtures/torch");

interface StateEntry {
  name: string;
  entries: Record<string, { dtype: string; shape: number[]; sum: number }>;
}
interface FileExpectation {
  trainingState: { epoch: number; global_step: number; best_model_score: number };
  optimizer: {
    paramOrder: string[];
    paramGroups: Record<string, unknown>[];
    state: Record<string, StateEntry>;
  };
  lrSchedulers: Record<string, unknown>[];
  metadataRecord?: { name: string; json: { training: { epoch: number; global_step: number } } };
}
const expected = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")).files as Record<
  string,
  FileExpectation
>;

const open: Checkpoint[] = [];
async function checkpoint(name: string): Promise<Checkpoint> {
  const opened = await openCheckpointFile(join(FIXTURES, name));
  open.push(opened);
  return opened;
}
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
});

/** The model key match a caller builds: the source's wrapper prefix stripped where the target has the key. */
function stripPrefix(prefix: string, targetParams: readonly ParameterInfo[]) {
  const names = new Set(targetParams.map((p) => p.name));
  return (key: string) => {
    const bare = key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
    return bare !== undefined && names.has(bare) ? bare : undefined;
  };
}

/** Sum of a typed array's elements in float64. */
const total = (array: ArrayLike<number>) => Array.from(array).reduce((a, b) => a + b, 0);

async function refusalCode(run: () => unknown): Promise<string | undefined> {
  try {
    await run();
  } catch (error) {
    if (error instanceof LoadoutError) return error.code;
    throw error;
  }
  return undefined;
}

describe.each([
  ["lightning.ckpt", "model.", "param_names"],
  ["lightning_no_param_names.ckpt", "model.", "parameter_order"],
  ["anemoi.ckpt", "model.model.", "param_names"],
] as const)("optimizer state of %s", (file, prefix, mapping) => {
  let ckpt: Checkpoint;
  let target: ParameterInfo[];
  beforeAll(async () => {
    ckpt = await checkpoint(file);
    // A fresh Net (never trained) is the target: what `--target net_fresh.pt` gives.
    const fresh = await checkpoint("net_fresh.pt");
    target = [...(await modelFromStateDict(fresh.stateDict()!.tensors)).parameters()];
  });

  it(`maps PyTorch's positions to the target's names (${mapping}) and reads every entry as torch did`, async () => {
    const want = expected[file]!.optimizer;
    const found = findOptimizerStates(ckpt.root);
    expect(found.map((f) => [f.path, f.origin])).toEqual([[["optimizer_states", 0], "lightning"]]);
    const parsed = parseTorchOptimizerState(found[0]!.value, found[0]!.path);
    expect(describeOptimizer(parsed)).toBe("Adam-like");
    expect(summarizeOptimizer(parsed)).toMatchObject({
      type: "Adam-like",
      parameters: want.paramOrder.length,
      withState: Object.keys(want.state).length,
      paramNames: mapping === "param_names",
    });

    const mapped = mapOptimizerToNames(parsed, {
      sourceParamOrder: [...ckpt.stateDict()!.tensors.keys()],
      toTarget: stripPrefix(prefix, target),
      targetParams: target,
    });
    expect(mapped.mapping).toBe(mapping);
    // Index i of PyTorch's optimizer state is parameter i of named_parameters().
    expect(mapped.byIndex).toEqual(
      new Map(want.paramOrder.map((name, i) => [i, name.slice(prefix.length)])),
    );

    const state = await toOptimizerState(parsed, mapped.byIndex, "AdamW");
    const { params: _params, param_names: _names, ...hyper } = want.paramGroups[0]!;
    expect(state.groups).toEqual([
      { params: want.paramOrder.map((n) => n.slice(prefix.length)), hyper },
    ]);
    for (const { name, entries } of Object.values(want.state)) {
      const entry = state.state.get(name.slice(prefix.length))!;
      expect(entry.scalars).toEqual({ step: entries.step!.sum });
      for (const slot of ["exp_avg", "exp_avg_sq"]) {
        const values = entry.tensors.get(slot) as Float32Array;
        expect(values).toBeInstanceOf(Float32Array);
        expect(values.length).toBe(entries[slot]!.shape.reduce((a, b) => a * b, 1));
        // torch summed in another order: equal to float64 rounding.
        expect(total(values)).toBeCloseTo(entries[slot]!.sum, 12);
      }
    }

    const optimizer = new MemoryOptimizer("AdamW", [{ params: [], hyper: {} }], { params: target });
    await optimizer.setState(state);
    expect(optimizer.getState().state.size).toBe(want.paramOrder.length);
  });

  it("refuses a target with a wider head (shapes differ)", async () => {
    const wide = await checkpoint("net_wide_fresh.pt");
    const wideTarget = [...(await modelFromStateDict(wide.stateDict()!.tensors)).parameters()];
    const found = findOptimizerStates(ckpt.root)[0]!;
    const parsed = parseTorchOptimizerState(found.value, found.path);
    const code = await refusalCode(() =>
      mapOptimizerToNames(parsed, {
        sourceParamOrder: [...ckpt.stateDict()!.tensors.keys()],
        toTarget: stripPrefix(prefix, wideTarget),
        targetParams: wideTarget,
      }),
    );
    expect(code).toBe("OPTIMIZER_SHAPE_MISMATCH");
  });
});

describe("parameter-order refusals on lightning_no_param_names.ckpt", () => {
  it("refuses when the target counts one parameter fewer (conv.bias held as a buffer)", async () => {
    const ckpt = await checkpoint("lightning_no_param_names.ckpt");
    const fresh = await checkpoint("net_fresh.pt");
    const names = expected["lightning.ckpt"]!.optimizer.paramOrder.map((n) =>
      n.slice("model.".length),
    );
    const model = await modelFromStateDict(fresh.stateDict()!.tensors, {
      parameterNames: new Set(names.filter((n) => n !== "conv.bias")),
    });
    const found = findOptimizerStates(ckpt.root)[0]!;
    const parsed = parseTorchOptimizerState(found.value, found.path);
    const code = await refusalCode(() =>
      mapOptimizerToNames(parsed, {
        sourceParamOrder: [...ckpt.stateDict()!.tensors.keys()],
        toTarget: stripPrefix("model.", model.parameters()),
        targetParams: model.parameters(),
      }),
    );
    expect(code).toBe("OPTIMIZER_COUNT_MISMATCH");
  });
});

describe.each(["lightning.ckpt", "anemoi.ckpt"])("scheduler and training state of %s", (file) => {
  it("converts the scheduler state to what torch saved", async () => {
    const ckpt = await checkpoint(file);
    const found = findSchedulerStates(ckpt.root);
    expect(found.map((f) => f.path)).toEqual([["lr_schedulers", 0]]);
    const state = await toSchedulerState(found[0]!.value, found[0]!.path);
    expect(state).toEqual(expected[file]!.lrSchedulers[0]);
    const scheduler = new MemoryScheduler("LR", {});
    await scheduler.setState(state);
    expect(scheduler.getState()).toEqual(state);
  });

  it("reads epoch, global_step and best_model_score", async () => {
    const ckpt = await checkpoint(file);
    const want = expected[file]!.trainingState;
    const { state, origin, notes } = await readTrainingState(ckpt);
    expect(origin).toBe("lightning");
    expect(state).toEqual({
      epoch: want.epoch,
      globalStep: want.global_step,
      bestMetric: want.best_model_score,
      metricsHistory: [],
    });
    // anemoi's metadata agrees with the counters: nothing to note about it.
    expect(notes.some((n) => n.includes("anemoi"))).toBe(false);
  });
});

describe.each(["anemoi.ckpt"])("anemoi metadata of %s", (file) => {
  it("gives epoch and global_step when the checkpoint has no Lightning counters", async () => {
    const ckpt = await checkpoint(file);
    const training = expected[file]!.metadataRecord!.json.training;
    // An inference checkpoint: the metadata records without Lightning's top-level counters.
    const { state, origin } = await readTrainingState({
      root: null,
      jsonMetadata: () => ckpt.jsonMetadata(),
    });
    expect(origin).toBe("anemoi");
    expect(state).toEqual({
      epoch: training.epoch,
      globalStep: training.global_step,
      bestMetric: null,
      metricsHistory: [],
    });
  });
});
