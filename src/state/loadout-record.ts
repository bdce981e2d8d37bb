import { formatPath, type TreePath } from "../checkpoint/tree.js";
import { FormatError, UnsupportedFormatError } from "../errors.js";
import { isDict, type PyDict, type PyValue } from "../formats/pickle/values.js";
import type { MetricRecord, TrainingState } from "./training-state.js";

/**
 * loadout's own record in the checkpoints it writes: a top-level `loadout` dict beside the
 * PyTorch-shaped parts, so that PyTorch can still load the file and loadout can load it without
 * guessing. The whole layout (Python notation):
 *
 *   {
 *     "state_dict": {name: tensor, ...},          # the model
 *     "optimizer": optimizer.state_dict(),        # optional: {"state": ..., "param_groups": ...}
 *     "scheduler": scheduler.state_dict(),        # optional
 *     "loadout": {
 *       "format_version": 1,
 *       "writer": "loadout 0.1.0",
 *       # optional: the state_dict keys of the optimizer's parameters, one per position of its
 *       # param_groups' "params" lists taken in order (group 0's first, then group 1's...)
 *       "param_order": ["conv.weight", "conv.bias", ...],
 *       # optional: where the run stood
 *       "training_state": {
 *         "epoch": 3,                    # int >= 0
 *         "global_step": 1200,           # int >= 0
 *         "best_metric": 0.25,           # float, or None
 *         "metrics_history": [[step, name, value], ...],   # [int, str, float] lists or tuples
 *       },
 *     },
 *   }
 *
 * Keys of the `loadout` dict that this version does not know are ignored (later versions of the
 * same format_version may add some); a format_version above ours is refused.
 */
export const LOADOUT_RECORD_KEY = "loadout";
export const LOADOUT_FORMAT_VERSION = 1;

/** The `training_state` dict as written (Python field names). */
export interface TrainingStateRecord {
  epoch: number;
  global_step: number;
  best_metric: number | null;
  metrics_history: [step: number, name: string, value: number][];
}

export interface LoadoutRecord {
  formatVersion: number;
  writer: string;
  paramOrder?: string[];
  trainingState?: TrainingState;
}

/** The `loadout` dict a writer stores, in the layout above. */
export interface LoadoutRecordData {
  format_version: number;
  writer: string;
  param_order?: string[];
  training_state?: TrainingStateRecord;
}

const RECORD_PATH: TreePath = [LOADOUT_RECORD_KEY];

function formatError(path: TreePath, what: string): FormatError {
  return new FormatError("BAD_LOADOUT_RECORD", what, {
    key: formatPath(path),
    hint: "The loadout record of this checkpoint is damaged; load it with the weights_only strategy.",
  });
}

/** loadout's record of a checkpoint tree, or undefined when it has none. Strict: see the layout. */
export function readLoadoutRecord(root: PyValue): LoadoutRecord | undefined {
  if (!isDict(root) || !root.has(LOADOUT_RECORD_KEY)) return undefined;
  const record = root.get(LOADOUT_RECORD_KEY)!;
  if (!isDict(record)) throw formatError(RECORD_PATH, "the loadout record is not a dict");
  const version = integerAt(record, "format_version", RECORD_PATH);
  if (version > LOADOUT_FORMAT_VERSION) {
    throw new UnsupportedFormatError(
      "LOADOUT_RECORD_TOO_NEW",
      `loadout record format ${version}; this loadout reads up to ${LOADOUT_FORMAT_VERSION}`,
      { key: formatPath(RECORD_PATH), hint: "Upgrade loadout to load this checkpoint." },
    );
  }
  if (version < 1)
    throw formatError([...RECORD_PATH, "format_version"], `format_version ${version}`);
  const writer = record.get("writer");
  if (typeof writer !== "string") {
    throw formatError([...RECORD_PATH, "writer"], "writer is missing or not a string");
  }
  const result: LoadoutRecord = { formatVersion: version, writer };
  if (record.has("param_order")) {
    result.paramOrder = stringList(record.get("param_order")!, [...RECORD_PATH, "param_order"]);
  }
  if (record.has("training_state")) {
    const path = [...RECORD_PATH, "training_state"];
    result.trainingState = trainingStateFrom(record.get("training_state")!, path);
  }
  return result;
}

function trainingStateFrom(value: PyValue, path: TreePath): TrainingState {
  if (!isDict(value)) throw formatError(path, "training_state is not a dict");
  const best = value.get("best_metric");
  if (best !== null && typeof best !== "number") {
    throw formatError(
      [...path, "best_metric"],
      "best_metric is missing or neither a float nor None",
    );
  }
  const history = value.get("metrics_history");
  const historyPath = [...path, "metrics_history"];
  if (!Array.isArray(history)) throw formatError(historyPath, "metrics_history is not a list");
  const metricsHistory: MetricRecord[] = history.map((entry, i) =>
    metricFrom(entry, [...historyPath, i]),
  );
  return {
    epoch: integerAt(value, "epoch", path),
    globalStep: integerAt(value, "global_step", path),
    bestMetric: best,
    metricsHistory,
  };
}

function metricFrom(entry: PyValue, path: TreePath): MetricRecord {
  if (!Array.isArray(entry) || entry.length !== 3) {
    throw formatError(path, "a metrics_history entry is not a [step, name, value] triple");
  }
  const [step, name, value] = entry;
  if (!isCount(step)) throw formatError([...path, 0], "the step is not a non-negative integer");
  if (typeof name !== "string") throw formatError([...path, 1], "the metric name is not a string");
  if (typeof value !== "number")
    throw formatError([...path, 2], "the metric value is not a number");
  return { step, name, value };
}

function isCount(value: PyValue | undefined): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function integerAt(dict: PyDict, key: string, path: TreePath): number {
  const value = dict.get(key);
  if (!isCount(value)) {
    throw formatError([...path, key], `${key} is missing or not a non-negative integer`);
  }
  return value;
}

function stringList(value: PyValue, path: TreePath): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw formatError(path, "expected a list of strings");
  }
  return [...(value as string[])];
}

/** The `training_state` dict for a writer, from a TrainingState. */
export function trainingStateToRecord(state: TrainingState): TrainingStateRecord {
  return {
    epoch: state.epoch,
    global_step: state.globalStep,
    best_metric: state.bestMetric,
    metrics_history: state.metricsHistory.map(({ step, name, value }) => [step, name, value]),
  };
}

/** The whole `loadout` dict a writer stores (see the layout above). */
export function loadoutRecordData(options: {
  writer: string;
  paramOrder?: readonly string[];
  trainingState?: TrainingState;
}): LoadoutRecordData {
  const data: LoadoutRecordData = {
    format_version: LOADOUT_FORMAT_VERSION,
    writer: options.writer,
  };
  if (options.paramOrder) data.param_order = [...options.paramOrder];
  if (options.trainingState) data.training_state = trainingStateToRecord(options.trainingState);
  return data;
}
