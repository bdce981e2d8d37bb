import type { Checkpoint } from "../checkpoint/checkpoint.js";
import type { JsonRecord } from "../checkpoint/metadata.js";
import { readTrainingCounters, type TrainingCounters } from "../checkpoint/training-counters.js";
import { FormatError } from "../errors.js";
import type { PyValue } from "../formats/pickle/values.js";
import { readLoadoutRecord } from "./loadout-record.js";
import { freshTrainingState, type TrainingState } from "./training-state.js";

export { type TrainingStateRecord, trainingStateToRecord } from "./loadout-record.js";

/**
 * Where a checkpoint's run stood, from the most specific record it has:
 *  1. loadout's own record (`loadout.training_state`; the layout is documented in
 *     loadout-record.ts): epoch, global_step, best_metric and metrics_history, exactly;
 *  2. Lightning's counters: top-level `epoch` and `global_step`, and the best score a
 *     ModelCheckpoint callback (or a subclass, such as anemoi's AnemoiCheckpoint) recorded;
 *  3. anemoi's metadata JSON in the zip (`anemoi-metadata/anemoi.json`, or `ai-models.json` in
 *     older files): its `training.epoch` and `training.global_step` (anemoi's inference
 *     checkpoints carry only this). It records no best metric.
 * Lightning and anemoi keep no metric history. `notes` says where each value came from and
 * where two records disagree.
 */

export type TrainingStateOrigin = "lightning" | "anemoi" | "loadout";

export interface TrainingStateResult {
  state: TrainingState;
  origin: TrainingStateOrigin | null;
  notes: string[];
}

/** What readTrainingState needs of a checkpoint. */
export type TrainingStateSource = Pick<Checkpoint, "root" | "jsonMetadata">;

interface Counts {
  epoch: number;
  globalStep: number;
}

export async function readTrainingState(
  checkpoint: TrainingStateSource,
): Promise<TrainingStateResult> {
  const notes: string[] = [];
  const record = readLoadoutRecord(checkpoint.root);
  const lightning = await lightningCounters(checkpoint.root);
  const anemoi = anemoiCounts(await checkpoint.jsonMetadata());

  if (record?.trainingState) {
    notes.push(`training state from loadout's record (written by ${record.writer})`);
    if (lightning.counts)
      noteDisagreement(notes, record.trainingState, lightning.counts, "Lightning's counters");
    return { state: record.trainingState, origin: "loadout", notes };
  }
  if (lightning.counts) {
    const state: TrainingState = {
      ...freshTrainingState(),
      ...lightning.counts,
      bestMetric: lightning.counters.bestMetric ?? null,
    };
    notes.push(...lightning.notes);
    if (anemoi) noteDisagreement(notes, state, anemoi.counts, anemoi.name);
    return { state, origin: "lightning", notes };
  }
  if (anemoi) {
    notes.push(
      `epoch and global_step from ${anemoi.name} (training.epoch, training.global_step); it records no best metric`,
    );
    return { state: { ...freshTrainingState(), ...anemoi.counts }, origin: "anemoi", notes };
  }
  notes.push("the checkpoint records no training state");
  return { state: freshTrainingState(), origin: null, notes };
}

function noteDisagreement(notes: string[], chosen: Counts, other: Counts, otherName: string): void {
  if (chosen.epoch !== other.epoch || chosen.globalStep !== other.globalStep) {
    notes.push(
      `${otherName} say epoch ${other.epoch}, global_step ${other.globalStep}; kept epoch ${chosen.epoch}, global_step ${chosen.globalStep}`,
    );
  }
}

function checkCount(value: number | undefined, key: string, file?: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new FormatError(
      "BAD_TRAINING_COUNTER",
      `${key} is ${value}, not a non-negative integer`,
      {
        file,
        key,
      },
    );
  }
  return value;
}

async function lightningCounters(
  root: PyValue,
): Promise<{ counters: TrainingCounters; counts?: Counts; notes: string[] }> {
  const counters = await readTrainingCounters(root);
  const epoch = checkCount(counters.epoch, "epoch");
  const globalStep = checkCount(counters.globalStep, "global_step");
  const notes: string[] = [];
  if (epoch === undefined && globalStep === undefined) return { counters, notes };
  notes.push("epoch and global_step from Lightning's counters");
  if (epoch === undefined) notes.push("the checkpoint has no epoch: 0");
  if (globalStep === undefined) notes.push("the checkpoint has no global_step: 0");
  if (counters.bestMetric !== undefined) {
    notes.push(
      `best_metric: the best ${counters.monitor ?? "monitored value"} recorded by the checkpoint callback`,
    );
  }
  return { counters, counts: { epoch: epoch ?? 0, globalStep: globalStep ?? 0 }, notes };
}

/** `training.epoch` / `training.global_step` of the first metadata record that has them. */
function anemoiCounts(
  records: readonly JsonRecord[],
): { counts: Counts; name: string } | undefined {
  for (const { name, value } of records) {
    const training = isObject(value) ? value.training : undefined;
    if (!isObject(training)) continue;
    const epoch = numberAt(training, "epoch", name);
    const globalStep = numberAt(training, "global_step", name);
    if (epoch === undefined && globalStep === undefined) continue;
    return { counts: { epoch: epoch ?? 0, globalStep: globalStep ?? 0 }, name };
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function numberAt(
  training: Record<string, unknown>,
  key: string,
  file: string,
): number | undefined {
  if (!Object.hasOwn(training, key)) return undefined;
  const value = training[key];
  if (typeof value !== "number") {
    throw new FormatError("BAD_TRAINING_COUNTER", `training.${key} is not a number`, {
      file,
      key: `training/${key}`,
    });
  }
  return checkCount(value, `training/${key}`, file);
}
