import type { DType, TypedArray } from "../tensors/dtype.js";

/**
 * What a checkpoint is loaded into, independent of framework. The in-memory implementation
 * (memory.ts) serves the CLI and tests; a TensorFlow.js adapter implements the same interfaces.
 *
 * Every mutating call is all-or-nothing and returns an `Undo` that restores exactly what was
 * there before: the load pipeline commits model, optimizer, scheduler and training state in turn
 * and, if a later step fails, undoes the earlier ones, so a failed load changes nothing.
 */
export type Undo = () => Promise<void>;

export interface ParameterInfo {
  /** Dotted name, as in a PyTorch state dict (`encoder.layers.0.weight`). */
  name: string;
  shape: readonly number[];
  dtype: DType;
  /** Updated by the optimizer (false for buffers and frozen parameters). */
  trainable: boolean;
  kind: "parameter" | "buffer";
}

export interface ModelTarget {
  /** Parameters and buffers in the model's own order. */
  parameters(): readonly ParameterInfo[];
  /** A copy of a parameter's current value. */
  read(name: string): Promise<TypedArray>;
  /**
   * Replaces the values of the named parameters (each exactly its parameter's dtype and size).
   * Validates everything before changing anything.
   */
  write(values: ReadonlyMap<string, TypedArray>): Promise<Undo>;
  /**
   * The live array behind a parameter, for in-place loads that read straight into the model;
   * undefined when the target keeps values elsewhere (GPU, wasm heap).
   */
  liveArray?(name: string): TypedArray | undefined;
  /** Freezes (false) or unfreezes (true) parameters. */
  setTrainable(names: readonly string[], trainable: boolean): Promise<Undo>;
  /**
   * Fresh values from each named parameter's own initialiser, not yet applied. Absent when the
   * target cannot re-initialise: reset parameters then keep their current (initial) values.
   */
  initialValues?(names: readonly string[]): Promise<Map<string, TypedArray>>;
  /**
   * The load is over (committed or rolled back): the Undos of the writes before it will not be
   * called, so the target may drop what it kept for them (the tfjs target keeps the replaced
   * values in the backend). The load pipeline calls it when a load ends; a caller of write()
   * outside the pipeline calls it once it no longer needs the Undos.
   */
  release?(): void;
}

/** Hyperparameters of one parameter group (PyTorch's names: lr, betas, eps, weight_decay, ...). */
export type Hyperparameters = Record<string, number | boolean | string | null | readonly number[]>;

export interface ParameterGroup {
  /** Parameter names, in the group's order. */
  params: string[];
  hyper: Hyperparameters;
}

/** One parameter's optimizer state: PyTorch's per-parameter dict (`step`, `exp_avg`, ...). */
export interface ParameterState {
  /** Scalar entries (`step`). */
  scalars: Record<string, number>;
  /** Tensor entries (`exp_avg`, `exp_avg_sq`, `momentum_buffer`), float32 or as stored. */
  tensors: Map<string, TypedArray>;
}

/** An optimizer's whole state, keyed by parameter name rather than position. */
export interface OptimizerState {
  /** `AdamW`, `Adam`, `SGD`... when known. */
  type?: string;
  groups: ParameterGroup[];
  state: Map<string, ParameterState>;
}

export interface OptimizerTarget {
  /** Optimizer kind this target is (`AdamW`, `adam`...), for checking a checkpoint against it. */
  readonly type: string;
  getState(): OptimizerState;
  /** Replaces the whole state (validated against the model's parameters first). */
  setState(state: OptimizerState): Promise<Undo>;
  /** Back to a fresh optimizer: no per-parameter state, hyperparameters as configured. */
  reset(): Promise<Undo>;
}

/** A learning-rate scheduler's state in PyTorch's field names (`last_epoch`, `_step_count`, `base_lrs`, `_last_lr`...). */
export type SchedulerState = Record<string, unknown>;

export interface SchedulerTarget {
  readonly type: string;
  getState(): SchedulerState;
  setState(state: SchedulerState): Promise<Undo>;
  reset(): Promise<Undo>;
}

export interface Targets {
  model: ModelTarget;
  optimizer?: OptimizerTarget;
  scheduler?: SchedulerTarget;
}
