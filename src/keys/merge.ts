import { ConfigError, MergeConflictError } from "../errors.js";
import { formatShape, sameShape } from "../tensors/shape.js";
import type { TensorLike } from "../tensors/tensor-like.js";
import { weightedAverage } from "./weighted-average.js";

export interface MergeOptions {
  /**
   * override: the union of all keys, a later dict's tensor replacing an earlier one's.
   * average: the weighted average of each key's tensors; every dict must hold every key.
   */
  mode: "override" | "average";
  /** average only: a finite, non-negative weight per dict (default equal), normalised to sum 1. */
  weights?: readonly number[];
}

/** Missing keys named per dict in the error, so the message stays readable. */
const MISSING_KEYS_SHOWN = 10;

/**
 * Combines state dicts. Keys keep the order of their first appearance. The same key must have
 * the same shape and dtype in every dict that has it (a MergeConflictError names the key, both
 * shapes and dtypes, and the dict). Averaged tensors are lazy: nothing is read until `read()`;
 * see weighted-average.ts for how each dtype is averaged.
 */
export function mergeStateDicts(
  dicts: readonly ReadonlyMap<string, TensorLike>[],
  options: MergeOptions,
): Map<string, TensorLike> {
  if (dicts.length === 0) {
    throw new ConfigError("NOTHING_TO_MERGE", "no state dicts to merge", {
      hint: "Pass at least one state dict.",
    });
  }
  const byKey = collectByKey(dicts);
  if (options.mode === "override") {
    if (options.weights !== undefined) {
      throw new ConfigError("BAD_MERGE_WEIGHTS", "weights only apply to mode 'average'", {
        hint: "Drop the weights, or use mode 'average'.",
      });
    }
    return new Map([...byKey].map(([key, entries]) => [key, entries.at(-1)!.tensor]));
  }
  if (options.mode !== "average") {
    throw new ConfigError("BAD_MERGE_MODE", `unknown merge mode '${String(options.mode)}'`, {
      hint: "Use 'override' or 'average'.",
    });
  }
  const weights = normalisedWeights(options.weights, dicts.length);
  assertEveryKeyEverywhere(dicts, byKey);
  return new Map(
    [...byKey].map(([key, entries]) => [
      key,
      weightedAverage(
        key,
        entries.map((entry) => entry.tensor),
        weights,
      ),
    ]),
  );
}

interface Entry {
  tensor: TensorLike;
  /** Position of its state dict in the merge. */
  dict: number;
}

/** Each key's tensors in dict order, checking shape and dtype agree as it goes. */
function collectByKey(dicts: readonly ReadonlyMap<string, TensorLike>[]): Map<string, Entry[]> {
  const byKey = new Map<string, Entry[]>();
  dicts.forEach((dict, index) => {
    for (const [key, tensor] of dict) {
      const entries = byKey.get(key);
      if (!entries) {
        byKey.set(key, [{ tensor, dict: index }]);
        continue;
      }
      assertSameKind(key, entries[0]!, { tensor, dict: index });
      entries.push({ tensor, dict: index });
    }
  });
  return byKey;
}

function assertSameKind(key: string, first: Entry, other: Entry): void {
  const shapeDiffers = !sameShape(first.tensor.shape, other.tensor.shape);
  if (!shapeDiffers && first.tensor.dtype === other.tensor.dtype) return;
  const describe = ({ tensor, dict }: Entry) =>
    `state dict ${dict} has ${tensor.dtype} ${formatShape(tensor.shape)}`;
  throw new MergeConflictError(
    shapeDiffers ? "MERGE_SHAPE_CONFLICT" : "MERGE_DTYPE_CONFLICT",
    `cannot merge differing tensors: ${describe(first)} but ${describe(other)}`,
    {
      key,
      hint: "Merged checkpoints must agree on every shared tensor; exclude the key from one.",
    },
  );
}

function normalisedWeights(weights: readonly number[] | undefined, count: number): number[] {
  if (weights === undefined) return new Array<number>(count).fill(1 / count);
  const bad = (what: string) =>
    new ConfigError("BAD_MERGE_WEIGHTS", `merge weights [${weights.join(", ")}] ${what}`, {
      hint: "Give one finite, non-negative weight per state dict, not all zero.",
    });
  if (weights.length !== count) throw bad(`are ${weights.length} for ${count} state dicts`);
  if (!weights.every((w) => typeof w === "number" && Number.isFinite(w) && w >= 0)) {
    throw bad("must be finite and non-negative");
  }
  const total = weights.reduce((sum, w) => sum + w, 0);
  if (total <= 0) throw bad("sum to zero");
  if (!Number.isFinite(total)) throw bad("overflow when summed");
  return weights.map((w) => w / total);
}

/** Average mode takes no guesses about absent tensors: every dict must hold every key. */
function assertEveryKeyEverywhere(
  dicts: readonly ReadonlyMap<string, TensorLike>[],
  byKey: ReadonlyMap<string, Entry[]>,
): void {
  const problems: string[] = [];
  dicts.forEach((dict, index) => {
    if (dict.size === byKey.size) return; // every dict's keys are among byKey's
    const absent: string[] = [];
    let count = 0;
    for (const key of byKey.keys()) {
      if (dict.has(key)) continue;
      count++;
      if (absent.length < MISSING_KEYS_SHOWN) absent.push(`'${key}'`);
    }
    const more = count > absent.length ? `, and ${count - absent.length} more` : "";
    problems.push(`state dict ${index} lacks ${count}: ${absent.join(", ")}${more}`);
  });
  if (problems.length === 0) return;
  throw new MergeConflictError(
    "MERGE_MISSING_KEYS",
    `cannot average state dicts that hold different keys (${problems.join("; ")})`,
    {
      hint: "Filter the state dicts to their shared keys first, or merge with mode 'override'.",
    },
  );
}
