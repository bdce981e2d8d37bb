import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readTrainingCounters } from "../../../src/checkpoint/training-counters.js";
import { WriteError } from "../../../src/errors.js";
import { readLoadoutRecord } from "../../../src/state/loadout-record.js";
import { readTrainingState } from "../../../src/state/read-training-state.js";
import {
  findOptimizerStates,
  mapOptimizerToNames,
  parseTorchOptimizerState,
  toOptimizerState,
} from "../../../src/state/torch-optimizer.js";
import { findSchedulerStates, toSchedulerState } from "../../../src/state/torch-scheduler.js";
import type { ParameterInfo } from "../../../src/targets/types.js";
import type { Tensor } from "../../../src/tensors/tensor.js";
import type { TensorLike } from "../../../src/tensors/tensor-like.js";
import {
  LIGHTNING_VERSION,
  modelCheckpointKey,
  pythonStringRepr,
  type TrainingCheckpoint,
  writeTrainingCheckpoint,
} from "../../../src/writers/torch/training-checkpoint.js";
import { LOADOUT_VERSION } from "../../../src/writers/torch/writer-version.js";
import { openBytes, recordingSink, sha256, tensorData } from "./helpers.js";
import { sampleCheckpoint, sampleModel, sampleScheduler, sampleTrainingState } from "./samples.js";

async function writeAndOpen(checkpoint: TrainingCheckpoint, options = {}) {
  const sink = recordingSink();
  await writeTrainingCheckpoint(sink, checkpoint, options);
  expect(sink.closed).toBe(true);
  return openBytes(sink.bytes(), "run.ckpt");
}

function targetParams(model: ReadonlyMap<string, TensorLike>): ParameterInfo[] {
  return [...model].map(([name, t]) => ({
    name,
    shape: t.shape,
    dtype: t.dtype,
    trainable: true,
    kind: name.startsWith("bn.") ? "buffer" : "parameter",
  }));
}

describe("writeTrainingCheckpoint writes Lightning's layout, which loadout's readers take back", () => {
  it("has Lightning's top-level keys and loadout's record", async () => {
    const checkpoint = await writeAndOpen(sampleCheckpoint());
    const root = checkpoint.root as Map<string, unknown>;
    expect([...root.keys()]).toEqual([
      "epoch",
      "global_step",
      "pytorch-lightning_version",
      "state_dict",
      "callbacks",
      "optimizer_states",
      "lr_schedulers",
      "hparams_name",
      "hyper_parameters",
      "loadout",
    ]);
    expect(root.get("pytorch-lightning_version")).toBe(LIGHTNING_VERSION);
    expect(root.get("hyper_parameters")).toEqual(
      new Map<string, unknown>([
        ["lr", 0.001],
        ["batch_size", 4],
        ["layers", ["conv", "head"]],
      ]),
    );
    const record = readLoadoutRecord(checkpoint.root)!;
    expect(record.writer).toBe(`loadout ${LOADOUT_VERSION}`);
    expect(record.paramOrder).toEqual([
      "model.conv.weight",
      "model.conv.bias",
      "model.head.weight",
      "model.head.bias",
    ]);
  });

  it("keeps the model's tensors under the prefix, bit for bit", async () => {
    const original = sampleCheckpoint();
    const checkpoint = await writeAndOpen({ ...original, prefix: "net." });
    const stateDict = checkpoint.stateDict()!;
    expect(stateDict.path).toEqual(["state_dict"]);
    expect([...stateDict.tensors.keys()]).toEqual(
      [...original.model.keys()].map((k) => `net.${k}`),
    );
    for (const [name, tensor] of original.model) {
      const back = stateDict.tensors.get(`net.${name}`)!;
      expect(back.dtype).toBe(tensor.dtype);
      expect(sha256(await tensorData(back))).toBe(sha256(await tensorData(tensor)));
    }
  });

  it("gives back the training state exactly, from loadout's record", async () => {
    const checkpoint = await writeAndOpen(sampleCheckpoint());
    const result = await readTrainingState(checkpoint);
    expect(result.origin).toBe("loadout");
    expect(result.state).toEqual(sampleTrainingState());
    // Lightning's counters agree with the record.
    expect(result.notes.some((n) => n.includes("kept"))).toBe(false);
    const counters = await readTrainingCounters(checkpoint.root);
    expect(counters).toEqual({
      epoch: 2,
      globalStep: 6,
      bestMetric: Math.fround(0.4321),
      monitor: "val_loss",
    });
  });

  it("keys the checkpoint callback as Lightning does", async () => {
    // The key in a checkpoint made the Lightning way (test/fixtures/torch/lightning.ckpt).
    const lightning = await openBytes(
      readFileSync(new URL("../../fixtures/torch/lightning.ckpt", import.meta.url)),
      "lightning.ckpt",
    );
    const [reference] = (lightning.root as Map<string, Map<string, unknown>>)
      .get("callbacks")!
      .keys();
    expect(modelCheckpointKey("val_loss", "min")).toBe(reference);
    const ours = (await writeAndOpen(sampleCheckpoint())).root as Map<string, Map<string, unknown>>;
    expect([...ours.get("callbacks")!.keys()]).toEqual([reference]);
  });

  it("gives back the optimizer state, mapped by param_names", async () => {
    const original = sampleCheckpoint();
    const checkpoint = await writeAndOpen(original);
    const found = findOptimizerStates(checkpoint.root);
    expect(found.map((f) => [f.path, f.origin])).toEqual([[["optimizer_states", 0], "lightning"]]);
    const parsed = parseTorchOptimizerState(found[0]!.value, found[0]!.path);
    expect(parsed.groups.map((g) => g.indices)).toEqual([[0, 1, 2], [3]]);
    expect(parsed.groups[0]!.paramNames).toEqual([
      "model.conv.weight",
      "model.conv.bias",
      "model.head.weight",
    ]);
    const step = parsed.state.get(0)!.scalars.step as Tensor;
    expect([step.dtype, step.shape]).toEqual(["float32", []]);
    const names = new Set(original.model.keys());
    const mapping = mapOptimizerToNames(parsed, {
      sourceParamOrder: [...checkpoint.stateDict()!.tensors.keys()],
      toTarget: (key) =>
        key.startsWith("model.") && names.has(key.slice(6)) ? key.slice(6) : undefined,
      targetParams: targetParams(original.model),
    });
    expect(mapping.mapping).toBe("param_names");
    const state = await toOptimizerState(parsed, mapping.byIndex, "AdamW");
    expect(state).toEqual(original.optimizer);
  });

  it("gives back the scheduler state", async () => {
    const checkpoint = await writeAndOpen(sampleCheckpoint());
    const found = findSchedulerStates(checkpoint.root);
    expect(found.map((f) => [f.path, f.origin])).toEqual([[["lr_schedulers", 0], "lightning"]]);
    expect(await toSchedulerState(found[0]!.value, found[0]!.path)).toEqual(sampleScheduler());
  });

  it("writes a MultiStepLR's milestones as the Counter with integer keys torch keeps", async () => {
    // torch.optim.lr_scheduler.MultiStepLR([2, 4], 0.1).state_dict()["milestones"] is
    // Counter({2: 1, 4: 1}); the reader gives it back as {"2": 1, "4": 1}.
    const scheduler = { milestones: { "2": 1, "4": 1 }, gamma: 0.1, last_epoch: 3, _step_count: 4 };
    const checkpoint = await writeAndOpen({ ...sampleCheckpoint(), scheduler });
    const found = findSchedulerStates(checkpoint.root)[0]!;
    const milestones = (found.value as Map<string, unknown>).get("milestones") as Map<
      unknown,
      unknown
    >;
    expect(milestones).toBeInstanceOf(Map);
    expect([...milestones]).toEqual([
      [2, 1],
      [4, 1],
    ]);
    expect(await toSchedulerState(found.value)).toMatchObject({ milestones: { "2": 1, "4": 1 } });
  });

  it("writes only what it is given", async () => {
    const checkpoint = await writeAndOpen({
      model: sampleModel(),
      trainingState: { epoch: 0, globalStep: 0, bestMetric: null, metricsHistory: [] },
    });
    const root = checkpoint.root as Map<string, unknown>;
    expect([...root.keys()]).toEqual([
      "epoch",
      "global_step",
      "pytorch-lightning_version",
      "state_dict",
      "loadout",
    ]);
    const record = readLoadoutRecord(checkpoint.root)!;
    expect(record.paramOrder).toBeUndefined();
    expect(record.trainingState).toEqual({
      epoch: 0,
      globalStep: 0,
      bestMetric: null,
      metricsHistory: [],
    });
  });

  it("converts only the model's floating tensors when asked for a dtype", async () => {
    const original = sampleCheckpoint();
    const checkpoint = await writeAndOpen(original, { dtype: "float16" });
    const stateDict = checkpoint.stateDict()!.tensors;
    expect(stateDict.get("model.conv.weight")!.dtype).toBe("float16");
    expect(stateDict.get("model.head.weight")!.dtype).toBe("float16");
    expect(stateDict.get("model.bn.num_batches_tracked")!.dtype).toBe("int64");
    const found = findOptimizerStates(checkpoint.root)[0]!;
    const parsed = parseTorchOptimizerState(found.value, found.path);
    expect(parsed.state.get(0)!.tensors.get("exp_avg")!.dtype).toBe("float32");
    expect(parsed.state.get(2)!.tensors.get("exp_avg")!.dtype).toBe("bfloat16");
  });

  it("uses the monitor and mode given", async () => {
    const root = (await writeAndOpen(sampleCheckpoint(), { monitor: "val/acc", mode: "max" }))
      .root as Map<string, Map<string, Map<string, unknown>>>;
    const key = modelCheckpointKey("val/acc", "max");
    expect(key).toBe(
      "ModelCheckpoint{'monitor': 'val/acc', 'mode': 'max', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}",
    );
    expect(root.get("callbacks")!.get(key)!.get("monitor")).toBe("val/acc");
  });
});

describe("LOADOUT_VERSION", () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"));
    expect(LOADOUT_VERSION).toBe(pkg.version);
  });
});

describe("pythonStringRepr", () => {
  it("matches Python's repr()", () => {
    // Expected strings from python3: repr(s)
    expect(pythonStringRepr("val_loss")).toBe("'val_loss'");
    expect(pythonStringRepr("it's")).toBe(`"it's"`);
    expect(pythonStringRepr(`a"b'c`)).toBe(`'a"b\\'c'`);
    expect(pythonStringRepr("tab\t")).toBe("'tab\\t'");
    expect(pythonStringRepr("\u00e9")).toBe("'\u00e9'");
    expect(pythonStringRepr("\x01\x7f")).toBe("'\\x01\\x7f'");
    expect(pythonStringRepr("back\\slash")).toBe("'back\\\\slash'");
    expect(pythonStringRepr("\u2028")).toBe("'\\u2028'");
  });
});

describe("writeTrainingCheckpoint refuses inconsistent input, writing nothing", () => {
  async function refusal(checkpoint: TrainingCheckpoint) {
    const sink = recordingSink();
    const error = await writeTrainingCheckpoint(sink, checkpoint).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(sink.aborted).toBe(true);
    expect(sink.writes).toEqual([]);
    expect(error).toBeInstanceOf(WriteError);
    return error as WriteError;
  }

  it("an optimizer parameter the model does not have, or one listed twice", async () => {
    const checkpoint = sampleCheckpoint();
    checkpoint.optimizer!.groups[1]!.params.push("missing.weight");
    expect((await refusal(checkpoint)).message).toMatch(/'missing.weight' is not in the model/);
    const twice = sampleCheckpoint();
    twice.optimizer!.groups[1]!.params.push("conv.bias");
    expect((await refusal(twice)).message).toMatch(/listed twice/);
  });

  it("state for a parameter no group lists, or of the wrong size", async () => {
    const stray = sampleCheckpoint();
    stray.optimizer!.groups[1]!.params = [];
    expect((await refusal(stray)).message).toMatch(/'head.bias', which no param group lists/);
    const wrong = sampleCheckpoint();
    wrong.optimizer!.state.get("conv.bias")!.tensors.set("exp_avg", new Float32Array(5));
    await expect(writeTrainingCheckpoint(recordingSink(), wrong)).rejects.toMatchObject({
      code: "BAD_TENSOR_DATA",
      key: "optimizer/state/conv.bias/exp_avg",
    });
  });

  it("16-bit state for a parameter that is not 16-bit (its dtype is unknown)", async () => {
    const checkpoint = sampleCheckpoint();
    checkpoint.optimizer!.state.get("conv.bias")!.tensors.set("exp_avg", new Uint16Array(2));
    expect((await refusal(checkpoint)).message).toMatch(/Uint16Array/);
  });

  it("counters that are not non-negative integers", async () => {
    for (const epoch of [-1, 1.5, Number.NaN]) {
      const checkpoint = sampleCheckpoint();
      checkpoint.trainingState.epoch = epoch;
      expect((await refusal(checkpoint)).code).toBe("INVALID_TRAINING_CHECKPOINT");
    }
    const checkpoint = sampleCheckpoint();
    checkpoint.trainingState.metricsHistory.push({
      step: 1,
      name: 3 as unknown as string,
      value: 1,
    });
    expect((await refusal(checkpoint)).message).toMatch(/name is not a string/);
  });

  it("a hyperparameter that is not a number, bool, string, None or list of numbers", async () => {
    const checkpoint = sampleCheckpoint();
    (checkpoint.optimizer!.groups[0]!.hyper as Record<string, unknown>).schedule = { a: 1 };
    expect((await refusal(checkpoint)).message).toMatch(/hyperparameter schedule/);
  });

  it("a model entry that is not a tensor", async () => {
    const checkpoint = sampleCheckpoint();
    (checkpoint.model as Map<string, unknown>).set("extra", 3);
    expect((await refusal(checkpoint)).message).toMatch(/'extra' is not a tensor/);
  });
});
