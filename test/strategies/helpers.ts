import { expect } from "vitest";
import { Checkpoint } from "../../src/checkpoint/checkpoint.js";
import { resolveLoadingConfig } from "../../src/config/resolve.js";
import type { LoadingConfig } from "../../src/config/types.js";
import { makeTuple, type PyValue } from "../../src/formats/pickle/values.js";
import { type ByteSource, checkRange, SliceSource } from "../../src/io/byte-source.js";
import { type LoadRequest, runLoad } from "../../src/pipeline/load.js";
import type { TrainingState } from "../../src/state/training-state.js";
import {
  type FaultInjection,
  MemoryModel,
  MemoryOptimizer,
  type MemoryParameterSpec,
  MemoryScheduler,
  type ModelSnapshot,
  sameSnapshot,
} from "../../src/targets/memory.js";
import type { OptimizerState, SchedulerState, Targets } from "../../src/targets/types.js";
import { allocate, bytesOf, type DType, type TypedArray } from "../../src/tensors/dtype.js";
import { numelOf } from "../../src/tensors/shape.js";
import { Tensor } from "../../src/tensors/tensor.js";

/**
 * Hand-built checkpoints and targets for the strategy tests. Every value is a simple function of
 * its name's position and element index, so a test can say by arithmetic what a load must give.
 */

// ---------------------------------------------------------------------------------------------
// A checkpoint file in memory whose reads can be made to fail
// ---------------------------------------------------------------------------------------------

/** An I/O failure as Node reports one (not a LoadoutError). */
export class InjectedIOError extends Error {
  readonly code = "EIO";
}

/**
 * The bytes of a hand-built checkpoint, tensors one after another. `failAfter` makes every read
 * that would take the total read past that many bytes throw, like a disk failing mid-load.
 */
export class FlakySource implements ByteSource {
  bytesRead = 0;
  failAfter: number | undefined;
  private bytes = new Uint8Array(0);

  constructor(readonly name: string) {}

  get size(): number {
    return this.bytes.byteLength;
  }

  /** Appends bytes to the file; returns where they start. */
  append(chunk: Uint8Array): number {
    const start = this.bytes.byteLength;
    const grown = new Uint8Array(start + chunk.byteLength);
    grown.set(this.bytes);
    grown.set(chunk, start);
    this.bytes = grown;
    return start;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, destination: Uint8Array): Promise<void> {
    checkRange(this.name, this.size, offset, destination.byteLength);
    if (this.failAfter !== undefined && this.bytesRead + destination.byteLength > this.failAfter) {
      throw new InjectedIOError(`EIO: i/o error, read ${this.name} at ${offset}`);
    }
    this.bytesRead += destination.byteLength;
    destination.set(this.bytes.subarray(offset, offset + destination.byteLength));
  }

  async close(): Promise<void> {}
}

/** A tensor of `dtype` holding `values` (raw bits for float16/bfloat16, bigints for int64). */
export function tensorIn(
  file: FlakySource,
  values: readonly (number | bigint)[],
  shape: readonly number[],
  dtype: DType = "float32",
): Tensor {
  const array = allocate(dtype, values.length);
  values.forEach((v, i) => {
    (array as unknown as (number | bigint)[])[i] = v;
  });
  const bytes = bytesOf(array);
  const start = file.append(bytes.slice());
  const slice = new SliceSource(file, start, bytes.byteLength, `${file.name}:data/${start}`);
  return new Tensor({ storage: { source: slice, dtype, bigEndian: false }, shape });
}

export const dict = (entries: readonly (readonly [PyValue, PyValue])[]): Map<PyValue, PyValue> =>
  new Map(entries.map(([k, v]) => [k, v]));

export const tuple = (...items: PyValue[]): PyValue => makeTuple(items) as PyValue[];

/** A Checkpoint over a hand-built tree, as the torch reader would give it. */
function checkpointOf(file: FlakySource, root: PyValue): Checkpoint {
  return new Checkpoint(file, {
    format: "torch-zip",
    root,
    opaqueClasses: new Set(),
    details: {},
    ownedSources: [],
  });
}

// ---------------------------------------------------------------------------------------------
// The tiny model: enc (Linear 2→3), bn (BatchNorm1d 3), dec (Linear 3→2)
// ---------------------------------------------------------------------------------------------

export interface TensorDecl {
  name: string;
  shape: number[];
  dtype: DType;
  kind: "parameter" | "buffer";
}

/** In PyTorch's state_dict order: each module's parameters, then its buffers. */
export const TINY: readonly TensorDecl[] = [
  { name: "enc.weight", shape: [3, 2], dtype: "float32", kind: "parameter" },
  { name: "enc.bias", shape: [3], dtype: "float32", kind: "parameter" },
  { name: "bn.weight", shape: [3], dtype: "float32", kind: "parameter" },
  { name: "bn.bias", shape: [3], dtype: "float32", kind: "parameter" },
  { name: "bn.running_mean", shape: [3], dtype: "float32", kind: "buffer" },
  { name: "bn.num_batches_tracked", shape: [], dtype: "int64", kind: "buffer" },
  { name: "dec.weight", shape: [2, 3], dtype: "float32", kind: "parameter" },
  { name: "dec.bias", shape: [2], dtype: "float32", kind: "parameter" },
];

export const TINY_NAMES = TINY.map((d) => d.name);
/** What `model.named_parameters()` lists, in order: the optimizer's positions. */
export const TINY_PARAMS = TINY.filter((d) => d.kind === "parameter").map((d) => d.name);

const indexOf = (name: string) => {
  const k = TINY_NAMES.indexOf(name.replace(/^.*?(enc|bn|dec)\./, "$1."));
  return k < 0 ? 50 : k;
};

/** Checkpoint value of element `i` of `name`: (k + 1) * 10 + i / 2, exact in every float type. */
export const sourceValue = (name: string, i: number) => (indexOf(name) + 1) * 10 + i * 0.5;
/** The target model's value before the load: negative, so it never equals a checkpoint value. */
export const targetValue = (name: string, i: number) => -(indexOf(name) + 1) - i * 0.25;
/** What the target's initialiser gives (cold_start reset_layers). */
export const initValue = (name: string, i: number) => 1000 + (indexOf(name) + 1) * 100 + i;

export const NUM_BATCHES_SOURCE = 7n;
const NUM_BATCHES_TARGET = 2n;

function valuesFor(
  decl: TensorDecl,
  value: (name: string, i: number) => number,
  count: bigint,
): (number | bigint)[] {
  const n = numelOf(decl.shape);
  if (decl.dtype === "int64") return Array.from({ length: n }, () => count);
  return Array.from({ length: n }, (_, i) => value(decl.name, i));
}

function arrayOf(dtype: DType, values: readonly (number | bigint)[]): TypedArray {
  const array = allocate(dtype, values.length);
  values.forEach((v, i) => {
    (array as unknown as (number | bigint)[])[i] = v;
  });
  return array;
}

/** A declaration list with some shapes or dtypes changed (a wider head, a float16 layer...). */
export function tinyWith(
  changes: Record<string, Partial<Pick<TensorDecl, "shape" | "dtype">>> = {},
  extra: readonly TensorDecl[] = [],
): TensorDecl[] {
  return [...TINY.map((d) => ({ ...d, ...changes[d.name] })), ...extra];
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

export interface SourceOptions {
  /** Tensors of the model (default TINY). */
  decls?: readonly TensorDecl[];
  /** Key prefix of the state dict (Lightning's `model.`; default none). */
  prefix?: string;
  /** Lightning-shaped (state_dict, counters, callbacks...) or a bare state dict. Default true. */
  lightning?: boolean;
  /** Optimizer state: AdamW's slots, SGD's, or none. Default "adam" (Lightning only). */
  optimizer?: "adam" | "sgd" | "none";
  /** Whether the optimizer's param group records param_names. Default true. */
  paramNames?: boolean;
  scheduler?: boolean;
  /** Counters and best metric. Default true (Lightning only). */
  counters?: boolean;
  name?: string;
}

export const SOURCE_EPOCH = 4;
export const SOURCE_STEP = 40;
/** 0.375 is exact in float32, so the best metric read back is exactly this. */
export const SOURCE_BEST = 0.375;
export const SOURCE_LR = 0.005;
export const SOURCE_SCHEDULER = {
  T_max: 10,
  eta_min: 0,
  base_lrs: [0.01],
  last_epoch: 4,
  _step_count: 5,
  _last_lr: [0.005],
};

/** Adam's first moment of optimizer position `p`, element `i`. */
export const expAvg = (p: number, i: number) => (p + 1) * 0.125 + i * 0.0625;
export const expAvgSq = (p: number, i: number) => (p + 1) * 0.5 + i * 0.25;
export const momentum = (p: number, i: number) => -(p + 1) - i * 0.5;

export interface BuiltSource {
  checkpoint: Checkpoint;
  file: FlakySource;
}

/** A checkpoint of the tiny model (or of `decls`) as PyTorch / Lightning would save it. */
export function sourceCheckpoint(options: SourceOptions = {}): BuiltSource {
  const decls = options.decls ?? TINY;
  const prefix = options.prefix ?? "";
  const file = new FlakySource(options.name ?? "source.ckpt");
  if (decls.some((d) => d.dtype === "float16" || d.dtype === "bfloat16")) {
    throw new Error("16-bit floats are raw bits: build them with stateDictCheckpoint");
  }
  const stateDict = dict(
    decls.map((d) => [
      prefix + d.name,
      tensorIn(file, valuesFor(d, sourceValue, NUM_BATCHES_SOURCE), d.shape, d.dtype),
    ]),
  );
  if (options.lightning === false) return { checkpoint: checkpointOf(file, stateDict), file };

  const root = dict([["pytorch-lightning_version", "2.4.0"]]);
  if (options.counters !== false) {
    root.set("epoch", SOURCE_EPOCH);
    root.set("global_step", SOURCE_STEP);
  }
  root.set("state_dict", stateDict);
  if (options.counters !== false) {
    root.set(
      "callbacks",
      dict([
        [
          "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}",
          dict([
            ["monitor", "val_loss"],
            ["best_model_score", tensorIn(file, [SOURCE_BEST], [], "float32")],
          ]),
        ],
      ]),
    );
  }
  const kind = options.optimizer ?? "adam";
  if (kind !== "none") {
    const params = decls.filter((d) => d.kind === "parameter");
    const state = dict(
      params.map((d, p) => {
        const n = numelOf(d.shape);
        const slots: [PyValue, PyValue][] =
          kind === "adam"
            ? [
                ["step", tensorIn(file, [SOURCE_STEP], [], "float32")],
                [
                  "exp_avg",
                  tensorIn(
                    file,
                    ramp(n, (i) => expAvg(p, i)),
                    d.shape,
                  ),
                ],
                [
                  "exp_avg_sq",
                  tensorIn(
                    file,
                    ramp(n, (i) => expAvgSq(p, i)),
                    d.shape,
                  ),
                ],
              ]
            : [
                [
                  "momentum_buffer",
                  tensorIn(
                    file,
                    ramp(n, (i) => momentum(p, i)),
                    d.shape,
                  ),
                ],
              ];
        return [p, dict(slots)];
      }),
    );
    const group: [PyValue, PyValue][] = [
      ["lr", SOURCE_LR],
      ["betas", tuple(0.9, 0.999)],
      ["eps", 1e-8],
      ["weight_decay", 0.01],
      ["amsgrad", false],
      ["initial_lr", 0.01],
    ];
    if (options.paramNames !== false) {
      group.push(["param_names", params.map((d) => prefix + d.name)]);
    }
    group.push(["params", params.map((_, p) => p)]);
    root.set("optimizer_states", [
      dict([
        ["state", state],
        ["param_groups", [dict(group)]],
      ]),
    ]);
  }
  if (options.scheduler !== false) {
    root.set("lr_schedulers", [
      dict(
        Object.entries(SOURCE_SCHEDULER).map(([k, v]) => [
          k,
          Array.isArray(v) ? (v as number[]) : (v as number),
        ]),
      ),
    ]);
  }
  return { checkpoint: checkpointOf(file, root), file };
}

function ramp(n: number, f: (i: number) => number): number[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

/** A bare state dict of tensors given explicitly (dtype tests). */
export function stateDictCheckpoint(
  tensors: readonly { key: string; values: (number | bigint)[]; shape: number[]; dtype: DType }[],
): BuiltSource {
  const file = new FlakySource("state_dict.pt");
  const root = dict(tensors.map((t) => [t.key, tensorIn(file, t.values, t.shape, t.dtype)]));
  return { checkpoint: checkpointOf(file, root), file };
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

export interface TargetOptions {
  decls?: readonly TensorDecl[];
  /** Faults for all three targets, or per target. */
  faults?: FaultInjection | TargetFaults;
  /** Parameters get an initialiser (for reset_layers). Default true. */
  init?: boolean;
  /** Optimizer kind of the target (default AdamW); null for none. */
  optimizer?: string | null;
  scheduler?: boolean;
  /** Names already frozen before the load. */
  frozen?: readonly string[];
}

export interface TargetFaults {
  model?: FaultInjection;
  optimizer?: FaultInjection;
  scheduler?: FaultInjection;
}

function faultsFor(
  options: TargetOptions,
  target: keyof TargetFaults,
): { faults?: FaultInjection } {
  const given = options.faults;
  if (!given) return {};
  const faults = "failOn" in given ? given : given[target];
  return faults ? { faults } : {};
}

export const TARGET_HYPER = { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.01 };
export const TARGET_SCHEDULER_INITIAL = {
  T_max: 10,
  eta_min: 0,
  base_lrs: [0.01],
  last_epoch: 0,
  _step_count: 1,
  _last_lr: [0.01],
};
/** Where the run the target belongs to stands before the load. */
export const TARGET_SCHEDULER_NOW = { ...TARGET_SCHEDULER_INITIAL, last_epoch: 2, _step_count: 3 };
export const RUN_STATE: TrainingState = {
  epoch: 2,
  globalStep: 17,
  bestMetric: 0.5,
  metricsHistory: [{ step: 10, name: "val_loss", value: 0.5 }],
};

export interface TinyTargets extends Targets {
  model: MemoryModel;
  optimizer?: MemoryOptimizer;
  scheduler?: MemoryScheduler;
}

/**
 * The tiny model (or `decls`) with the target's own values, an AdamW optimizer that has already
 * stepped (so a reset is visible) and a scheduler two epochs in.
 */
export async function tinyTargets(options: TargetOptions = {}): Promise<TinyTargets> {
  const decls = options.decls ?? TINY;
  const frozen = new Set(options.frozen ?? []);
  const specs: MemoryParameterSpec[] = decls.map((d) => {
    const spec: MemoryParameterSpec = {
      name: d.name,
      shape: d.shape,
      dtype: d.dtype,
      kind: d.kind,
      trainable: d.kind === "parameter" && !frozen.has(d.name),
      value: arrayOf(d.dtype, valuesFor(d, targetValue, NUM_BATCHES_TARGET)),
    };
    if (options.init !== false && d.kind === "parameter" && d.dtype === "float32") {
      spec.init = () => arrayOf(d.dtype, valuesFor(d, initValue, 0n));
    }
    return spec;
  });
  const model = new MemoryModel(specs, faultsFor(options, "model"));
  const targets: TinyTargets = { model };
  const params = model.parameters();
  const parameterNames = params.filter((p) => p.kind === "parameter").map((p) => p.name);
  if (options.optimizer !== null) {
    const optimizer = new MemoryOptimizer(
      options.optimizer ?? "AdamW",
      [{ params: parameterNames, hyper: { ...TARGET_HYPER } }],
      { params, ...faultsFor(options, "optimizer") },
    );
    await optimizer.setState(runningOptimizerState(optimizer.getState(), params));
    targets.optimizer = optimizer;
  }
  if (options.scheduler !== false) {
    const scheduler = new MemoryScheduler(
      "CosineAnnealingLR",
      TARGET_SCHEDULER_INITIAL,
      faultsFor(options, "scheduler"),
    );
    await scheduler.setState(TARGET_SCHEDULER_NOW);
    targets.scheduler = scheduler;
  }
  return targets;
}

/** The state of an optimizer that has stepped 3 times: a `step` and one moment per parameter. */
function runningOptimizerState(
  fresh: OptimizerState,
  params: readonly { name: string; shape: readonly number[]; kind: string }[],
): OptimizerState {
  const state = new Map(
    params
      .filter((p) => p.kind === "parameter")
      .map((p) => [
        p.name,
        {
          scalars: { step: 3 },
          tensors: new Map([["exp_avg", new Float32Array(numelOf(p.shape)).fill(0.25)]]),
        },
      ]),
  );
  return { ...fresh, state };
}

// ---------------------------------------------------------------------------------------------
// Running and checking
// ---------------------------------------------------------------------------------------------

/** A resolved loading config, made the way a user's YAML is. */
export function loading(type: string, options: Record<string, unknown> = {}): LoadingConfig {
  return resolveLoadingConfig({ type, ...options }, { knownTypes: [type] });
}

export function load(
  checkpoint: Checkpoint,
  targets: Targets,
  config: LoadingConfig,
  extra: Partial<LoadRequest> = {},
) {
  return runLoad({ checkpoint, targets, config, trainingState: RUN_STATE, ...extra });
}

export interface TargetsSnapshot {
  model: ModelSnapshot;
  optimizer: OptimizerState | undefined;
  scheduler: SchedulerState | undefined;
}

export function snapshotOf(targets: TinyTargets): TargetsSnapshot {
  return {
    model: targets.model.snapshot(),
    optimizer: targets.optimizer?.getState(),
    scheduler: targets.scheduler?.getState(),
  };
}

/** Model bit for bit, optimizer and scheduler state deeply equal to `before`. */
export function expectUnchanged(targets: TinyTargets, before: TargetsSnapshot): void {
  expect(sameSnapshot(before.model, targets.model.snapshot())).toBe(true);
  expect(targets.optimizer?.getState()).toEqual(before.optimizer);
  expect(targets.scheduler?.getState()).toEqual(before.scheduler);
}

/** A parameter's current values as plain numbers. */
export async function valuesOf(targets: Targets, name: string): Promise<number[]> {
  return Array.from(await targets.model.read(name), Number);
}

/** `f(name, i)` for every element of a parameter of `shape`. */
export function expected(
  name: string,
  shape: readonly number[],
  f: (name: string, i: number) => number,
): number[] {
  return Array.from({ length: numelOf(shape) }, (_, i) => f(name, i));
}

/** Rejects with a LoadoutError of `code`; returns it for further checks. */
export async function rejection<T>(promise: Promise<T>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected the promise to reject");
}
