import { openAtomicFile } from "../writers/file-sink.js";
import type { TorchCheckpointResult } from "../writers/torch/torch-writer.js";
import type { TrainingCheckpointOptions } from "../writers/torch/training-checkpoint.js";
import { type TfjsTrainingRun, writeTfjsTrainingCheckpoint } from "./save.js";

/**
 * Saves a tfjs training run to `path` atomically (Node.js): the file appears whole when done,
 * and a failure leaves any previous file at `path` as it was. Layout: see save.ts.
 */
export async function saveTrainingCheckpoint(
  path: string,
  run: TfjsTrainingRun,
  options: TrainingCheckpointOptions = {},
): Promise<TorchCheckpointResult> {
  return writeTfjsTrainingCheckpoint(await openAtomicFile(path), run, options);
}
