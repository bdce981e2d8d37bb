import { describe, expect, it } from "vitest";
import type { JsonRecord } from "../../src/checkpoint/metadata.js";
import { FormatError, UnsupportedFormatError } from "../../src/errors.js";
import type { PyValue } from "../../src/formats/pickle/values.js";
import { loadoutRecordData, readLoadoutRecord } from "../../src/state/loadout-record.js";
import { readTrainingState, trainingStateToRecord } from "../../src/state/read-training-state.js";
import type { TrainingState } from "../../src/state/training-state.js";
import { dict, scalarTensor, tuple } from "./helpers.js";

const source = (root: PyValue, records: JsonRecord[] = []) => ({
  root,
  jsonMetadata: async () => records,
});

/** What Lightning 2.x writes at the top level (trimmed), with a ModelCheckpoint callback. */
function lightningRoot(callbackName = "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}") {
  return dict([
    ["epoch", 2],
    ["global_step", 6],
    ["pytorch-lightning_version", "2.4.0"],
    ["state_dict", dict([])],
    [
      "callbacks",
      dict([
        [
          callbackName,
          dict([
            ["monitor", "val_loss"],
            ["best_model_score", scalarTensor(0.4321)],
          ]),
        ],
      ]),
    ],
  ]);
}

const anemoiRecord = (epoch: number, step: number): JsonRecord => ({
  name: "anemoi-metadata/anemoi.json",
  value: { version: "1.0", training: { epoch, global_step: step, precision: "32" } },
});

/** A loadout record as Python would hold it: dicts, lists and tuples. */
function loadoutRoot(trainingState: PyValue = loadoutTrainingState()) {
  return dict([
    ["state_dict", dict([])],
    [
      "loadout",
      dict([
        ["format_version", 1],
        ["writer", "loadout 0.1.0"],
        ["param_order", ["w", "b"]],
        ["training_state", trainingState],
      ]),
    ],
  ]);
}

function loadoutTrainingState() {
  return dict([
    ["epoch", 3],
    ["global_step", 1200],
    ["best_metric", 0.25],
    ["metrics_history", [tuple(100, "val_loss", 0.5), [200, "val_loss", 0.25]]],
  ]);
}

describe("readTrainingState", () => {
  it("reads loadout's own record first", async () => {
    const root = loadoutRoot();
    root.set("epoch", 3).set("global_step", 1200);
    const { state, origin, notes } = await readTrainingState(source(root, [anemoiRecord(9, 9)]));
    expect(origin).toBe("loadout");
    expect(state).toEqual({
      epoch: 3,
      globalStep: 1200,
      bestMetric: 0.25,
      metricsHistory: [
        { step: 100, name: "val_loss", value: 0.5 },
        { step: 200, name: "val_loss", value: 0.25 },
      ],
    });
    expect(notes).toEqual(["training state from loadout's record (written by loadout 0.1.0)"]);
  });

  it("notes where loadout's record and Lightning's counters disagree", async () => {
    const root = loadoutRoot();
    root.set("epoch", 4).set("global_step", 1300);
    const { notes } = await readTrainingState(source(root));
    expect(notes[1]).toBe(
      "Lightning's counters say epoch 4, global_step 1300; kept epoch 3, global_step 1200",
    );
  });

  it("reads Lightning's counters and the best score of its ModelCheckpoint", async () => {
    const { state, origin, notes } = await readTrainingState(source(lightningRoot()));
    expect(origin).toBe("lightning");
    // best_model_score is a float32 tensor: 0.4321 as float32.
    expect(state).toEqual({
      epoch: 2,
      globalStep: 6,
      bestMetric: Math.fround(0.4321),
      metricsHistory: [],
    });
    expect(notes).toContain("best_metric: the best val_loss recorded by the checkpoint callback");
  });

  it("finds the best score of a ModelCheckpoint subclass (anemoi's AnemoiCheckpoint)", async () => {
    const root = lightningRoot("AnemoiCheckpoint{'monitor': 'val_wmse', 'mode': 'min'}");
    const { state } = await readTrainingState(source(root, [anemoiRecord(2, 6)]));
    expect(state.bestMetric).toBe(Math.fround(0.4321));
  });

  it("prefers Lightning's counters to anemoi's metadata, noting a disagreement", async () => {
    const { state, origin, notes } = await readTrainingState(
      source(lightningRoot(), [anemoiRecord(1, 4)]),
    );
    expect(origin).toBe("lightning");
    expect(state.epoch).toBe(2);
    expect(notes).toContain(
      "anemoi-metadata/anemoi.json say epoch 1, global_step 4; kept epoch 2, global_step 6",
    );
  });

  it("reads anemoi's metadata when there are no counters (an inference checkpoint)", async () => {
    const { state, origin } = await readTrainingState(
      source(dict([["model", null]]), [anemoiRecord(1, 4)]),
    );
    expect(origin).toBe("anemoi");
    expect(state).toEqual({ epoch: 1, globalStep: 4, bestMetric: null, metricsHistory: [] });
  });

  it("says when there is nothing to read", async () => {
    const { state, origin, notes } = await readTrainingState(
      source(dict([["w", 1]]), [{ name: "ai-models.json", value: [1] }]),
    );
    expect(origin).toBeNull();
    expect(state).toEqual({ epoch: 0, globalStep: 0, bestMetric: null, metricsHistory: [] });
    expect(notes).toEqual(["the checkpoint records no training state"]);
  });

  it("refuses counters that are not non-negative integers", async () => {
    await expect(readTrainingState(source(dict([["epoch", 1.5]])))).rejects.toThrow(FormatError);
    await expect(
      readTrainingState(
        source(dict([]), [{ name: "ai-models.json", value: { training: { epoch: "3" } } }]),
      ),
    ).rejects.toThrow(/training\.epoch is not a number/);
  });
});

describe("loadout record", () => {
  it("round-trips a training state through the writer's layout", () => {
    const state: TrainingState = {
      epoch: 5,
      globalStep: 777,
      bestMetric: null,
      metricsHistory: [{ step: 1, name: "loss", value: 2.5 }],
    };
    const record = trainingStateToRecord(state);
    expect(record).toEqual({
      epoch: 5,
      global_step: 777,
      best_metric: null,
      metrics_history: [[1, "loss", 2.5]],
    });
    const data = loadoutRecordData({
      writer: "loadout 0.1.0",
      paramOrder: ["a"],
      trainingState: state,
    });
    // As the pickle writer would store it: dicts for objects, lists for arrays.
    const asPython = (value: unknown): PyValue =>
      Array.isArray(value)
        ? value.map(asPython)
        : value !== null && typeof value === "object"
          ? dict(Object.entries(value).map(([k, v]) => [k, asPython(v)]))
          : (value as PyValue);
    expect(readLoadoutRecord(dict([["loadout", asPython(data)]]))).toEqual({
      formatVersion: 1,
      writer: "loadout 0.1.0",
      paramOrder: ["a"],
      trainingState: state,
    });
  });

  const broken: [string, (r: Map<PyValue, PyValue>) => void, string][] = [
    ["a missing writer", (r) => r.delete("writer"), "loadout/writer"],
    ["param_order with a number", (r) => r.set("param_order", ["a", 1]), "loadout/param_order"],
    [
      "a negative epoch",
      (r) => (r.get("training_state") as Map<PyValue, PyValue>).set("epoch", -1),
      "loadout/training_state/epoch",
    ],
    [
      "a string best_metric",
      (r) => (r.get("training_state") as Map<PyValue, PyValue>).set("best_metric", "0.1"),
      "loadout/training_state/best_metric",
    ],
    [
      "a metrics_history pair",
      (r) =>
        (r.get("training_state") as Map<PyValue, PyValue>).set("metrics_history", [[1, "loss"]]),
      "loadout/training_state/metrics_history/0",
    ],
    [
      "a metric named by a number",
      (r) => (r.get("training_state") as Map<PyValue, PyValue>).set("metrics_history", [[1, 2, 3]]),
      "loadout/training_state/metrics_history/0/1",
    ],
  ];
  for (const [what, breakIt, key] of broken) {
    it(`refuses ${what}, naming where`, () => {
      const root = loadoutRoot();
      breakIt(root.get("loadout") as Map<PyValue, PyValue>);
      let error: unknown;
      try {
        readLoadoutRecord(root);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FormatError);
      expect((error as FormatError).key).toBe(key);
    });
  }

  it("refuses a record from a newer loadout, and ignores keys it does not know", () => {
    const root = loadoutRoot();
    (root.get("loadout") as Map<PyValue, PyValue>).set("format_version", 2);
    expect(() => readLoadoutRecord(root)).toThrow(UnsupportedFormatError);
    const extra = loadoutRoot();
    (extra.get("loadout") as Map<PyValue, PyValue>).set("future_field", 1);
    expect(readLoadoutRecord(extra)?.writer).toBe("loadout 0.1.0");
    expect(readLoadoutRecord(dict([]))).toBeUndefined();
  });
});
