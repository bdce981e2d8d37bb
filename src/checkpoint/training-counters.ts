import { isDict, type PyValue } from "../formats/pickle/values.js";
import { Tensor } from "../tensors/tensor.js";

/** Where a run stood when the checkpoint was saved. */
export interface TrainingCounters {
  epoch?: number;
  globalStep?: number;
  /** The best monitored value a ModelCheckpoint callback recorded. */
  bestMetric?: number;
  /** What that value measures (`val_loss`...). */
  monitor?: string;
}

/** A Python number, or a one-element tensor, as a JavaScript number. */
export async function scalarOf(value: PyValue | undefined): Promise<number | undefined> {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Tensor && value.numel === 1 && value.dtype !== "complex64") {
    const [element] = await value.read({ dtype: "float64" });
    return element as number;
  }
  return undefined;
}

/**
 * `epoch`, `global_step` and a ModelCheckpoint callback's (or subclass's) `best_model_score` from a
 * Lightning-shaped checkpoint (or any dict with those keys). Reads at most one scalar tensor.
 */
export async function readTrainingCounters(root: PyValue): Promise<TrainingCounters> {
  const counters: TrainingCounters = {};
  if (!isDict(root)) return counters;
  const epoch = await scalarOf(root.get("epoch"));
  if (epoch !== undefined) counters.epoch = epoch;
  const step = await scalarOf(root.get("global_step"));
  if (step !== undefined) counters.globalStep = step;
  const callbacks = root.get("callbacks");
  if (isDict(callbacks)) {
    for (const [name, state] of callbacks) {
      // ModelCheckpoint, or a subclass keyed by its own name (anemoi's `AnemoiCheckpoint{...}`).
      if (typeof name !== "string" || !/^\w*Checkpoint\b/.test(name) || !isDict(state)) continue;
      const best = await scalarOf(state.get("best_model_score"));
      if (best === undefined) continue;
      counters.bestMetric = best;
      const monitor = state.get("monitor");
      if (typeof monitor === "string") counters.monitor = monitor;
      break;
    }
  }
  return counters;
}
