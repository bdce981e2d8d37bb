import type { Checkpoint } from "../checkpoint/checkpoint.js";
import { ConfigError, MergeConflictError } from "../errors.js";
import { mergeStateDicts } from "../keys/merge.js";
import { openCheckpointFile } from "../node.js";
import type { DType } from "../tensors/dtype.js";
import { PyOrderedDict } from "../writers/torch/python-values.js";
import { formatBytes, formatCount, formatNumber } from "./format.js";
import {
  describeFiles,
  outputDType,
  outputFormatFor,
  parseNumberList,
  tensorStreams,
  writeSafetensorsOutput,
  writeTorchOutput,
} from "./output.js";

/**
 * `loadout merge A B [C...] --out OUT`: the model state dicts of several checkpoints combined by
 * mergeStateDicts (override: the union of keys, a later file winning; --average: the weighted
 * average of every key, which every file must hold), written as safetensors or a PyTorch zip by
 * OUT's extension, atomically.
 */

export interface MergeOptions {
  out: string;
  average?: boolean;
  /** Comma-separated, one per input ("0.5,0.3,0.2"); --average only. */
  weights?: string;
  dtype?: DType;
  strict?: boolean;
  allowGlobal?: string[];
}

/** The weights as numbers, strictly: one non-negative number per input. */
export function parseMergeWeights(text: string, inputs: number): number[] {
  const weights = parseNumberList(text, "--weights");
  if (weights.length !== inputs) {
    throw new ConfigError(
      "BAD_MERGE_WEIGHTS",
      `--weights gives ${weights.length} weight(s) for ${inputs} checkpoints`,
      {
        hint: "Give one weight per input, in the order of the inputs, e.g. --weights 0.5,0.3,0.2.",
      },
    );
  }
  return weights;
}

/** Runs `merge`, adding which file each "state dict N" of a conflict is. */
function nameFiles<T>(inputs: readonly string[], merge: () => T): T {
  try {
    return merge();
  } catch (error) {
    if (!(error instanceof MergeConflictError)) throw error;
    const files = inputs.map((file, i) => `${i} = ${file}`).join(", ");
    throw new MergeConflictError(error.code, `${error.what} (state dicts: ${files})`, {
      key: error.key,
      hint: error.hint,
      cause: error,
    });
  }
}

export async function runMergeCommand(inputs: string[], options: MergeOptions): Promise<string> {
  if (inputs.length < 2) {
    throw new ConfigError(
      "NOTHING_TO_MERGE",
      `merge needs at least two checkpoints, got ${inputs.length}`,
      {
        hint: "loadout merge A B [C...] --out OUT",
      },
    );
  }
  if (options.weights !== undefined && !options.average) {
    throw new ConfigError("BAD_MERGE_WEIGHTS", "--weights applies to --average only", {
      hint: "Add --average, or drop --weights (without --average a later file's tensor wins).",
    });
  }
  const weights =
    options.weights === undefined ? undefined : parseMergeWeights(options.weights, inputs.length);
  const format = outputFormatFor(options.out);
  const checkpoints: Checkpoint[] = [];
  const streams = tensorStreams("merging");
  try {
    for (const input of inputs) {
      checkpoints.push(
        await openCheckpointFile(input, {
          strict: options.strict === true,
          allowGlobals: options.allowGlobal ?? [],
        }),
      );
    }
    const merged = nameFiles(inputs, () =>
      mergeStateDicts(
        checkpoints.map((checkpoint) => checkpoint.requireStateDict().tensors),
        options.average ? { mode: "average", weights } : { mode: "override" },
      ),
    );
    const entries = [...merged].map(
      ([key, tensor]) =>
        [key, streams.stream(tensor, outputDType(tensor, options.dtype, key))] as const,
    );
    const written =
      format === "safetensors"
        ? await writeSafetensorsOutput(options.out, entries)
        : await writeTorchOutput(options.out, new PyOrderedDict(new Map(entries)));
    const how = options.average
      ? `average${weights ? ` with weights ${weights.map(formatNumber).join(", ")}` : ""}`
      : "override, later files win";
    const removed =
      written.removed.length > 0
        ? `; removed ${formatCount(written.removed.length)} stale file(s) of the same name`
        : "";
    return (
      `merged ${formatCount(inputs.length)} checkpoints (${how}): ${formatCount(entries.length)} tensors, ` +
      `${formatBytes(written.bytes)} written to ${describeFiles(written.files)}${removed}`
    );
  } finally {
    streams.stop();
    await Promise.all(checkpoints.map((checkpoint) => checkpoint.close()));
  }
}
