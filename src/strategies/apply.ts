import { LoadError, LoadoutError, TensorError } from "../errors.js";
import type { ProgressEvent } from "../pipeline/context.js";
import { rollBack, undoAll } from "../pipeline/undo.js";
import { toOptimizerState } from "../state/torch-optimizer.js";
import type { TrainingState } from "../state/training-state.js";
import type { Targets, Undo } from "../targets/types.js";
import { allocate, type TypedArray } from "../tensors/dtype.js";
import { contiguousStrides, nextIndex, numelOf } from "../tensors/shape.js";
import type { LoadPlan, PlanEntry } from "./plan.js";
import { handlesOf, type PlanHandles } from "./plan-state.js";
import type { SourceTensor } from "./source-tensor.js";

export interface ApplyOptions {
  /**
   * transactional (default): stage every new value first, then commit model, optimizer and
   * scheduler in turn, undoing earlier commits if a later one fails. Costs one extra copy of
   * what loads.
   * in_place: everything that can be checked without reading tensor data is checked first
   * (shapes, dtypes, conversions, every byte range inside the file), and frozen flags,
   * optimizer, scheduler and reset parameters are committed; then tensors are read straight
   * into the model's arrays. No extra copy, but an I/O error in the middle of the copy (a disk
   * failure, the file changed underneath) leaves the tensors before it loaded; everything else
   * is undone.
   */
  mode?: "transactional" | "in_place";
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal | undefined;
}

export interface ApplyResult {
  trainingState: TrainingState;
  tensorsLoaded: number;
  bytesLoaded: number;
  /**
   * Undoes what the load committed, for a pipeline whose later stage fails. Tensors an in_place
   * load read straight into the model's arrays are not restored.
   */
  undo: Undo;
}

/** Throws a LoadError listing every violation when the plan cannot be applied. */
export function assertApplicable(plan: LoadPlan): void {
  if (plan.violations.length === 0) return;
  const lines = plan.violations.map((v) => `  - ${v}`).join("\n");
  throw new LoadError(
    "PLAN_VIOLATIONS",
    `${plan.strategy} cannot load this checkpoint (${plan.violations.length} ${plan.violations.length === 1 ? "problem" : "problems"})\n${lines}`,
    {
      file: plan.source.file,
      hint: `Nothing was changed. Run \`loadout plan\` to see every parameter's action${
        plan.strategy === "transfer_learning"
          ? ""
          : "; to load only what fits, use transfer_learning"
      }.`,
    },
  );
}

/** Copies the overlapping block of `source` (shape `from`) into `target` (shape `to`). */
function copyOverlap(
  source: TypedArray,
  from: readonly number[],
  target: TypedArray,
  to: readonly number[],
  block: readonly number[],
): void {
  const count = numelOf(block);
  if (count === 0) return;
  // Array elements per value: 2 for complex dtypes (real, imaginary), else 1.
  const width = source.length / numelOf(from);
  if (!Number.isInteger(width)) {
    throw new TensorError(
      "OVERLAP_PACKED",
      "cannot copy a block of a dtype that packs several values into a byte",
      { hint: "Use mismatch: skip for this tensor." },
    );
  }
  const fromStrides = contiguousStrides(from).map((stride) => stride * width);
  const toStrides = contiguousStrides(to).map((stride) => stride * width);
  const rank = block.length;
  const last = rank - 1;
  const run = (rank === 0 ? 1 : block[last]!) * width;
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (;;) {
    let s = 0;
    let t = 0;
    for (let d = 0; d < rank - 1; d++) {
      s += index[d]! * fromStrides[d]!;
      t += index[d]! * toStrides[d]!;
    }
    (target as Float32Array).set((source as Float32Array).subarray(s, s + run), t);
    if (!nextIndex(index, block)) return;
  }
}

class Progress {
  tensorsDone = 0;
  bytesDone = 0;
  constructor(
    readonly tensorsTotal: number,
    readonly bytesTotal: number,
    private readonly listener: ((event: ProgressEvent) => void) | undefined,
  ) {}
  step(key: string, bytes: number): void {
    this.tensorsDone++;
    this.bytesDone += bytes;
    this.listener?.({
      stage: "load",
      key,
      tensorsDone: this.tensorsDone,
      tensorsTotal: this.tensorsTotal,
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
    });
  }
}

function checkAborted(signal: AbortSignal | undefined, file: string): void {
  if (signal?.aborted) {
    throw new LoadError("ABORTED", "load aborted; nothing was changed", { file });
  }
}

/** Reads one entry's new value into a fresh array of the target's dtype. */
async function stageEntry(
  entry: PlanEntry,
  handles: PlanHandles,
  targets: Targets,
): Promise<TypedArray> {
  const tensor = handles.sourceTensors.get(entry.source!)!;
  if (!entry.overlap) {
    const value = allocate(entry.targetDtype, numelOf(entry.targetShape));
    await tensor.readInto(value, { dtype: entry.targetDtype });
    return value;
  }
  const current = await targets.model.read(entry.target);
  const incoming = await tensor.read({ dtype: entry.targetDtype });
  copyOverlap(incoming, tensor.shape, current, entry.targetShape, entry.overlap);
  return current;
}

/**
 * Reads started ahead of the tensor being staged. With one ahead, the I/O thread sat idle
 * through each garbage collection (20 ms or more: every 32-64 MiB of fresh arrays starts one)
 * once its single read was done; a few keep it busy. Staging allocates every value anyway, so
 * reading ahead costs no memory.
 */
const STAGING_AHEAD = 4;

/**
 * Stages every load in plan order with the next reads already started, so that file reads (in
 * Node's I/O threads, page faults of the fresh arrays included) run while this thread
 * transposes, converts or collects garbage. Yields each value in order; the first failure in
 * plan order is thrown, once every read in flight has settled.
 */
async function* stageAll(
  loads: readonly PlanEntry[],
  handles: PlanHandles,
  targets: Targets,
  signal: AbortSignal | undefined,
  file: string,
): AsyncGenerator<[PlanEntry, TypedArray]> {
  const inFlight: Promise<TypedArray>[] = [];
  let started = 0;
  const startAhead = () => {
    while (started < loads.length && inFlight.length <= STAGING_AHEAD) {
      checkAborted(signal, file);
      const staging = stageEntry(loads[started++]!, handles, targets);
      // Handled when awaited in turn; this keeps an early failure from being reported unhandled.
      staging.catch(() => {});
      inFlight.push(staging);
    }
  };
  try {
    for (let i = 0; i < loads.length; i++) {
      startAhead();
      const value = await inFlight[0]!;
      inFlight.shift();
      yield [loads[i]!, value];
    }
  } finally {
    // Stopped early (a failure, an abort): let the reads in flight finish before returning.
    await Promise.allSettled(inFlight);
  }
}

/** Local headers resolved at once: each is a small read whose latency, not size, is the cost. */
const CONCURRENT_CHECKS = 16;

/**
 * checkReadable for every tensor, several at a time (one at a time, 256 zip local headers took
 * tens of milliseconds before the first byte was copied). Throws the error of the first tensor,
 * in the given order, that fails, as checking them one by one would.
 */
async function checkAllReadable(tensors: readonly SourceTensor[]): Promise<void> {
  const failures = new Map<number, unknown>();
  let next = 0;
  const worker = async () => {
    while (next < tensors.length) {
      const index = next++;
      await tensors[index]!.checkReadable().catch((error: unknown) => {
        failures.set(index, error);
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_CHECKS, tensors.length) }, worker));
  if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
}

/**
 * Runs commits in order; if one fails, undoes the earlier ones (newest first) and rethrows.
 * Returns the undos of all of them, oldest first.
 */
async function commitAll(steps: (() => Promise<Undo>)[], file: string): Promise<Undo[]> {
  const undos: Undo[] = [];
  try {
    for (const step of steps) undos.push(await step());
  } catch (error) {
    await rollBack(undos, error, file);
  }
  return undos;
}

/** Applies a plan to the targets, all-or-nothing in transactional mode. */
export async function applyPlan(
  plan: LoadPlan,
  targets: Targets,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  assertApplicable(plan);
  const handles = handlesOf(plan);
  if (!handles) {
    throw new LoadError(
      "PLAN_DETACHED",
      "this plan was not built by buildPlan (or was copied), so it cannot be applied",
      {},
    );
  }
  const file = plan.source.file;
  const loads = plan.entries.filter((e) => e.action === "load");
  const bytesOf = (e: PlanEntry) => handles.sourceTensors.get(e.source!)!.byteLength;
  const progress = new Progress(
    loads.length,
    loads.reduce((sum, e) => sum + bytesOf(e), 0),
    options.onProgress,
  );
  const resets = plan.entries.filter((e) => e.action === "reset").map((e) => e.target);
  const toFreeze = plan.entries
    .filter(
      (e) => e.frozen && targets.model.parameters().find((p) => p.name === e.target)?.trainable,
    )
    .map((e) => e.target);

  let undos: Undo[] = [];
  try {
    // Everything below that can fail without touching the targets happens first.
    const resetValues =
      resets.length > 0 && targets.model.initialValues
        ? await targets.model.initialValues(resets)
        : new Map<string, TypedArray>();
    const optimizerState =
      plan.optimizer?.action === "restore" && handles.optimizer
        ? await toOptimizerState(
            handles.optimizer.parsed,
            handles.optimizer.byIndex,
            targets.optimizer?.type,
            {
              dtype: "float32",
            },
          )
        : undefined;
    if (optimizerState) {
      // Moments follow their parameter's layout mapping (a transpose for TensorFlow.js kernels).
      const sourceOf = new Map(
        plan.entries.map((e) => [
          e.target,
          e.source ? handles.sourceTensors.get(e.source) : undefined,
        ]),
      );
      for (const [name, state] of optimizerState.state) {
        const transformLike = sourceOf.get(name)?.transformLike;
        if (!transformLike) continue;
        for (const [slot, values] of state.tensors)
          state.tensors.set(slot, transformLike(values, "float32"));
      }
    }
    const stateSteps: (() => Promise<Undo>)[] = [];
    if (toFreeze.length > 0) stateSteps.push(() => targets.model.setTrainable(toFreeze, false));
    if (targets.optimizer && plan.optimizer) {
      const optimizer = targets.optimizer;
      if (plan.optimizer.action === "restore" && optimizerState)
        stateSteps.push(() => optimizer.setState(optimizerState));
      if (plan.optimizer.action === "reset") stateSteps.push(() => optimizer.reset());
    }
    if (targets.scheduler && plan.scheduler) {
      const scheduler = targets.scheduler;
      if (plan.scheduler.action === "restore" && handles.scheduler) {
        const state = handles.scheduler;
        stateSteps.push(() => scheduler.setState(state));
      }
      if (plan.scheduler.action === "reset") stateSteps.push(() => scheduler.reset());
    }

    if ((options.mode ?? "transactional") === "transactional") {
      const staged = new Map<string, TypedArray>(resetValues);
      for await (const [entry, value] of stageAll(loads, handles, targets, options.signal, file)) {
        staged.set(entry.target, value);
        progress.step(entry.target, bytesOf(entry));
      }
      checkAborted(options.signal, file);
      undos = await commitAll([() => targets.model.write(staged), ...stateSteps], file);
    } else {
      // in_place: resolve every source byte range (zip local headers included) before writing.
      await checkAllReadable(loads.map((entry) => handles.sourceTensors.get(entry.source!)!));
      checkAborted(options.signal, file);
      // Everything that can be undone is committed first, so that the copy, which cannot, is last.
      undos = await commitAll(
        [...(resetValues.size > 0 ? [() => targets.model.write(resetValues)] : []), ...stateSteps],
        file,
      );
      try {
        for (const entry of loads) {
          const live = entry.overlap ? undefined : targets.model.liveArray?.(entry.target);
          if (live) {
            await handles.sourceTensors
              .get(entry.source!)!
              .readInto(live, { dtype: entry.targetDtype });
          } else {
            const value = await stageEntry(entry, handles, targets);
            undos.push(await targets.model.write(new Map([[entry.target, value]])));
          }
          progress.step(entry.target, bytesOf(entry));
        }
      } catch (error) {
        await rollBack(undos, error, file);
      }
    }
  } catch (error) {
    if (error instanceof LoadoutError) throw error;
    throw new LoadError(
      "APPLY_FAILED",
      `load failed: ${(error as Error)?.message ?? String(error)}`,
      {
        file,
        cause: error,
        hint:
          options.mode === "in_place"
            ? "In-place mode: tensors before the failure may have loaded."
            : "Nothing was changed.",
      },
    );
  }
  return {
    trainingState: plan.trainingState.value,
    tensorsLoaded: progress.tensorsDone,
    bytesLoaded: progress.bytesDone,
    undo: () => undoAll(undos, file),
  };
}
