import { WriteError } from "../../errors.js";
import { LOADOUT_FORMAT_VERSION, LOADOUT_RECORD_KEY } from "../../state/loadout-record.js";
import type { TrainingState } from "../../state/training-state.js";
import type { OptimizerState, SchedulerState } from "../../targets/types.js";
import type { TensorLike } from "../../tensors/tensor-like.js";
import type { ByteSink } from "../sink.js";
import { arrayTensor } from "./array-tensor.js";
import { optimizerStateDict } from "./optimizer-state-dict.js";
import { PyOrderedDict, pyFloat, type WritableValue } from "./python-values.js";
import { schedulerStateDict } from "./scheduler-state-dict.js";
import { isTensorLike } from "./tensor-pickling.js";
import {
  checkTargetDType,
  convertFloating,
  type TorchCheckpointOptions,
  type TorchCheckpointResult,
  writeTorchArchive,
} from "./torch-writer.js";
import { LOADOUT_VERSION } from "./writer-version.js";

/**
 * A training run's checkpoint in the layout PyTorch Lightning 2.x saves, so Python tools read it
 * (`LightningModule.load_from_checkpoint`, `torch.load(weights_only=True)`, a Trainer resuming
 * it) and loadout's reader finds every part:
 *
 *   {
 *     "epoch": 3, "global_step": 1200,
 *     "pytorch-lightning_version": "2.4.0",
 *     "state_dict": OrderedDict(model.<name>: tensor, ...),   # the net held as `self.model`
 *     "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', ...}":
 *                     {"monitor": ..., "best_model_score": tensor(0.25), "best_model_path": ""}},
 *     "optimizer_states": [optimizer.state_dict()],      # see optimizer-state-dict.ts
 *     "lr_schedulers": [scheduler.state_dict()],         # see scheduler-state-dict.ts
 *     "hparams_name": "kwargs", "hyper_parameters": {...},
 *     "loadout": {format_version, writer, param_order, training_state},   # loadout-record.ts
 *   }
 *
 * Each part is written only when there is something to put in it: no `callbacks` without a best
 * metric, no `optimizer_states` / `lr_schedulers` without an optimizer / scheduler (Lightning then
 * treats the file as weights-only), no hyperparameters unless given. There is no `loops` entry:
 * a Trainer resuming from the file restores the model, optimizer, scheduler and callback but
 * starts its loop counters afresh.
 *
 * `pytorch-lightning_version` is "2.4.0": Lightning reads it on load to decide which of its
 * checkpoint migrations to run, and this layout is the one Lightning 2.4 writes, so none run.
 */

/** The Lightning version whose checkpoint layout this is. */
export const LIGHTNING_VERSION = "2.4.0";

export interface TrainingCheckpoint {
  /** The model's state dict, names as the model has them (without `prefix`). */
  model: ReadonlyMap<string, TensorLike>;
  optimizer?: OptimizerState;
  scheduler?: SchedulerState;
  trainingState: TrainingState;
  /** Written as `hyper_parameters`. Whole numbers are ints: wrap floats in `pyFloat`. */
  hyperParameters?: Readonly<Record<string, WritableValue>> | ReadonlyMap<string, WritableValue>;
  /** Put before every model name in `state_dict` (Lightning's `self.model`). Default "model.". */
  prefix?: string;
}

export interface TrainingCheckpointOptions extends TorchCheckpointOptions {
  /** The metric ModelCheckpoint monitored (part of its state key). Default "val_loss". */
  monitor?: string;
  /** Whether a lower or a higher `monitor` was better. Default "min". */
  mode?: "min" | "max";
  /** Recorded in the loadout record. Default `loadout <version>`. */
  writer?: string;
}

function invalid(what: string, key: string): WriteError {
  return new WriteError("INVALID_TRAINING_CHECKPOINT", what, { key });
}

function checkCount(value: unknown, key: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`${key} is ${String(value)}, not a non-negative integer`, key);
  }
  return value;
}

function checkNumber(value: unknown, key: string): number {
  if (typeof value !== "number") throw invalid(`${key} is ${String(value)}, not a number`, key);
  return value;
}

/** What Python's str.isprintable() rejects: other (C*) and separator (Z*) characters but space. */
const NOT_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

/** Python's repr() of a str, as Lightning's state key prints it. */
export function pythonStringRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === "\\" || char === quote) out += `\\${char}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (!NOT_PRINTABLE.test(char)) out += char;
    else if (code < 0x100) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += `\\U${code.toString(16).padStart(8, "0")}`;
  }
  return out + quote;
}

/** ModelCheckpoint's state key with its default options (Lightning's `_generate_state_key`). */
export function modelCheckpointKey(monitor: string, mode: "min" | "max"): string {
  return (
    `ModelCheckpoint{'monitor': ${pythonStringRepr(monitor)}, 'mode': ${pythonStringRepr(mode)}, ` +
    "'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
  );
}

function trainingStateRecord(state: TrainingState): Map<string, WritableValue> {
  const key = "trainingState";
  const epoch = checkCount(state.epoch, `${key}.epoch`);
  const globalStep = checkCount(state.globalStep, `${key}.globalStep`);
  const best =
    state.bestMetric === null ? null : checkNumber(state.bestMetric, `${key}.bestMetric`);
  if (!Array.isArray(state.metricsHistory)) throw invalid("metricsHistory is not a list", key);
  const history = state.metricsHistory.map((record, i) => {
    const at = `${key}.metricsHistory[${i}]`;
    if (typeof record?.name !== "string") throw invalid(`${at}.name is not a string`, at);
    return [
      checkCount(record.step, `${at}.step`),
      record.name,
      pyFloat(checkNumber(record.value, `${at}.value`)),
    ];
  });
  return new Map<string, WritableValue>([
    ["epoch", epoch],
    ["global_step", globalStep],
    ["best_metric", best === null ? null : pyFloat(best)],
    ["metrics_history", history],
  ]);
}

function stateDict(model: ReadonlyMap<string, TensorLike>, prefix: string): PyOrderedDict {
  if (!(model instanceof Map)) throw invalid("model is not a Map of name to tensor", "model");
  const entries = new Map<WritableValue, WritableValue>();
  for (const [name, tensor] of model) {
    if (typeof name !== "string")
      throw invalid(`model key ${String(name)} is not a string`, "model");
    if (!isTensorLike(tensor))
      throw invalid(`model entry '${name}' is not a tensor`, `model/${name}`);
    entries.set(`${prefix}${name}`, tensor);
  }
  return new PyOrderedDict(entries);
}

/** The checkpoint's tree, before pickling. */
export function trainingCheckpointTree(
  checkpoint: TrainingCheckpoint,
  options: Omit<TrainingCheckpointOptions, "folder" | "dtype"> = {},
): Map<string, WritableValue> {
  const prefix = checkpoint.prefix ?? "model.";
  if (typeof prefix !== "string") throw invalid("prefix is not a string", "prefix");
  const record = trainingStateRecord(checkpoint.trainingState);
  const tree = new Map<string, WritableValue>([
    ["epoch", record.get("epoch")!],
    ["global_step", record.get("global_step")!],
    ["pytorch-lightning_version", LIGHTNING_VERSION],
    ["state_dict", stateDict(checkpoint.model, prefix)],
  ]);
  const best = checkpoint.trainingState.bestMetric;
  if (best !== null) {
    const monitor = options.monitor ?? "val_loss";
    const mode = options.mode ?? "min";
    if (mode !== "min" && mode !== "max")
      throw invalid(`mode ${String(mode)} is neither min nor max`, "mode");
    const callback = new Map<string, WritableValue>([
      ["monitor", monitor],
      ["best_model_score", arrayTensor("float32", [], Float32Array.of(best), "best_model_score")],
      ["best_model_path", ""],
    ]);
    tree.set("callbacks", new Map([[modelCheckpointKey(monitor, mode), callback]]));
  }
  let paramOrder: string[] | undefined;
  if (checkpoint.optimizer) {
    const optimizer = optimizerStateDict(checkpoint.optimizer, checkpoint.model, prefix);
    tree.set("optimizer_states", [optimizer.value]);
    paramOrder = optimizer.paramOrder;
  }
  if (checkpoint.scheduler) tree.set("lr_schedulers", [schedulerStateDict(checkpoint.scheduler)]);
  if (checkpoint.hyperParameters) {
    const hyper = checkpoint.hyperParameters;
    tree.set("hparams_name", "kwargs");
    tree.set(
      "hyper_parameters",
      hyper instanceof Map ? new Map(hyper) : new Map(Object.entries(hyper)),
    );
  }
  const loadout = new Map<string, WritableValue>([
    ["format_version", LOADOUT_FORMAT_VERSION],
    ["writer", options.writer ?? `loadout ${LOADOUT_VERSION}`],
  ]);
  if (paramOrder) loadout.set("param_order", paramOrder);
  loadout.set("training_state", record);
  tree.set(LOADOUT_RECORD_KEY, loadout);
  return tree;
}

/**
 * Writes a Lightning-shaped training checkpoint (layout above) to `sink` and closes it. `dtype`
 * converts the model's floating tensors only; optimizer state and scalars keep their dtypes. On
 * any failure the sink is aborted and the error rethrown.
 */
export async function writeTrainingCheckpoint(
  sink: ByteSink,
  checkpoint: TrainingCheckpoint,
  options: TrainingCheckpointOptions = {},
): Promise<TorchCheckpointResult> {
  try {
    checkTargetDType(options.dtype);
    const tree = trainingCheckpointTree(checkpoint, options);
    const modelTensors = new Set<TensorLike>(checkpoint.model.values());
    const target = options.dtype;
    return await writeTorchArchive(sink, tree, {
      folder: options.folder,
      chooseDType: (tensor, path) =>
        modelTensors.has(tensor) ? convertFloating(tensor, path, target) : tensor.dtype,
    });
  } catch (error) {
    await sink.abort().catch(() => {});
    throw error;
  }
}
