import { LoadError } from "../errors.js";
import { copyPlainValue, isPlainObject } from "../state/plain-value.js";
import {
  allocate,
  arrayKindOf,
  byteLengthOf,
  bytesOf,
  type DType,
  dtypeInfo,
  type TypedArray,
} from "../tensors/dtype.js";
import { formatShape, numelOf } from "../tensors/shape.js";
import { type FaultInjection, injectFaults, once } from "./transactions.js";
import type {
  Hyperparameters,
  ModelTarget,
  OptimizerState,
  OptimizerTarget,
  ParameterGroup,
  ParameterInfo,
  ParameterState,
  SchedulerState,
  SchedulerTarget,
  Undo,
} from "./types.js";

/**
 * Targets over typed arrays in memory: what the CLI loads into, and what tests use to check that
 * every mutation is all-or-nothing and that its Undo restores exactly what was there.
 */

export type { FaultInjection };

export interface TargetOptions {
  faults?: FaultInjection;
}

/** Elements a typed array holding `numel` values of `dtype` has (raw types: bytes; complex: 2 per value). */
export function arrayLengthFor(dtype: DType, numel: number): number {
  const info = dtypeInfo(dtype);
  if (info.kind === "raw") return byteLengthOf(dtype, numel) ?? Number.NaN;
  return info.kind === "complex" ? numel * 2 : numel;
}

function unknownParameter(name: string): LoadError {
  return new LoadError("UNKNOWN_PARAMETER", `the model has no parameter '${name}'`, { key: name });
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

export interface MemoryParameterSpec {
  name: string;
  shape: readonly number[];
  dtype: DType;
  /** Default: true for parameters, false for buffers (a buffer is never trainable). */
  trainable?: boolean;
  /** Default "parameter". */
  kind?: "parameter" | "buffer";
  /** Initial value (taken, not copied); default `init()`, else zeros. */
  value?: TypedArray;
  /** The parameter's initialiser: fresh values for a reset. */
  init?: () => TypedArray;
}

interface Slot {
  info: ParameterInfo;
  value: TypedArray;
  init: (() => TypedArray) | undefined;
}

/** Everything a model exposes, deep-copied: compare two with sameSnapshot. */
export interface ModelSnapshot {
  parameters: ParameterInfo[];
  values: Map<string, TypedArray>;
}

export class MemoryModel implements ModelTarget {
  private readonly slots = new Map<string, Slot>();
  private readonly faults: FaultInjection | undefined;
  private infos: readonly ParameterInfo[] | undefined;

  constructor(params: readonly MemoryParameterSpec[], options: TargetOptions = {}) {
    this.faults = options.faults;
    for (const spec of params) {
      if (this.slots.has(spec.name)) {
        throw new LoadError("DUPLICATE_PARAMETER", `parameter '${spec.name}' is declared twice`, {
          key: spec.name,
        });
      }
      const kind = spec.kind ?? "parameter";
      const trainable = spec.trainable ?? kind === "parameter";
      if (kind === "buffer" && trainable) {
        throw new LoadError("TRAINABLE_BUFFER", `buffer '${spec.name}' cannot be trainable`, {
          key: spec.name,
        });
      }
      const info: ParameterInfo = {
        name: spec.name,
        shape: Object.freeze([...spec.shape]),
        dtype: spec.dtype,
        trainable,
        kind,
      };
      const value = spec.value ?? spec.init?.() ?? allocate(spec.dtype, numelOf(spec.shape));
      checkArray(info, value);
      this.slots.set(spec.name, { info, value, init: spec.init });
    }
  }

  parameters(): readonly ParameterInfo[] {
    this.infos ??= Object.freeze(
      [...this.slots.values()].map((slot) => Object.freeze({ ...slot.info })),
    );
    return this.infos;
  }

  async read(name: string): Promise<TypedArray> {
    return this.slot(name).value.slice();
  }

  /**
   * Takes the given arrays as the parameters' values (no copy: the caller must not keep using
   * them). Checks every name, dtype and length, and that no two arrays share memory, first.
   */
  async write(values: ReadonlyMap<string, TypedArray>): Promise<Undo> {
    for (const [name, value] of values) checkArray(this.slot(name).info, value);
    this.checkNoSharing(values);
    injectFaults(this.faults, "write", values.keys());
    const previous = new Map<string, TypedArray>();
    for (const [name, value] of values) {
      const slot = this.slots.get(name)!;
      previous.set(name, slot.value);
      slot.value = value;
    }
    return once(() => {
      for (const [name, value] of previous) this.slots.get(name)!.value = value;
    });
  }

  liveArray(name: string): TypedArray | undefined {
    return this.slots.get(name)?.value;
  }

  async setTrainable(names: readonly string[], trainable: boolean): Promise<Undo> {
    for (const name of names) {
      const { info } = this.slot(name);
      if (trainable && info.kind === "buffer") {
        throw new LoadError("TRAINABLE_BUFFER", `buffer '${name}' cannot be made trainable`, {
          key: name,
        });
      }
    }
    injectFaults(this.faults, "setTrainable", names);
    const previous = new Map(names.map((name) => [name, this.slots.get(name)!.info.trainable]));
    this.setFlags(new Map(names.map((name) => [name, trainable])));
    return once(() => this.setFlags(previous));
  }

  /**
   * Fresh values from each parameter's `init`. A parameter without one gives a copy of its
   * current value: called before a load (as plans do), "reset" then keeps the target's own
   * initial values.
   */
  async initialValues(names: readonly string[]): Promise<Map<string, TypedArray>> {
    const result = new Map<string, TypedArray>();
    for (const name of names) {
      const slot = this.slot(name);
      const value = slot.init ? slot.init() : slot.value.slice();
      checkArray(slot.info, value);
      result.set(name, value);
    }
    return result;
  }

  snapshot(): ModelSnapshot {
    return {
      parameters: this.parameters().map((info) => ({ ...info, shape: [...info.shape] })),
      values: new Map([...this.slots].map(([name, slot]) => [name, slot.value.slice()])),
    };
  }

  private slot(name: string): Slot {
    const slot = this.slots.get(name);
    if (!slot) throw unknownParameter(name);
    return slot;
  }

  private setFlags(flags: ReadonlyMap<string, boolean>): void {
    for (const [name, trainable] of flags) {
      const slot = this.slots.get(name)!;
      slot.info = { ...slot.info, trainable };
    }
    this.infos = undefined;
  }

  /** Arrays taken by write() must not overlap each other or another parameter's array. */
  private checkNoSharing(values: ReadonlyMap<string, TypedArray>): void {
    const byBuffer = new Map<ArrayBufferLike, { name: string; start: number; end: number }[]>();
    for (const [name, slot] of this.slots) {
      const array = values.get(name) ?? slot.value;
      if (array.byteLength === 0) continue;
      const ranges = byBuffer.get(array.buffer) ?? [];
      ranges.push({ name, start: array.byteOffset, end: array.byteOffset + array.byteLength });
      byBuffer.set(array.buffer, ranges);
    }
    for (const ranges of byBuffer.values()) {
      ranges.sort((a, b) => a.start - b.start);
      let reach = ranges[0]!;
      for (const range of ranges.slice(1)) {
        if (range.start < reach.end) {
          throw new LoadError(
            "SHARED_ARRAY",
            `'${reach.name}' and '${range.name}' would share memory`,
            {
              key: range.name,
              hint: "Give each parameter its own array.",
            },
          );
        }
        reach = range;
      }
    }
  }
}

/** Throws unless `value` is the typed array of `info`'s dtype with one element per value. */
function checkArray(info: ParameterInfo, value: TypedArray): void {
  const expectedKind = dtypeInfo(info.dtype).array;
  const expectedLength = arrayLengthFor(info.dtype, numelOf(info.shape));
  const kind = arrayKindOf(value);
  if (kind !== expectedKind || value.length !== expectedLength) {
    throw new LoadError(
      "BAD_VALUE",
      `'${info.name}' (${info.dtype} ${formatShape(info.shape)}) needs a ${expectedKind} of ${expectedLength}, got a ${kind} of ${value.length}`,
      { key: info.name },
    );
  }
}

function sameBytes(a: TypedArray, b: TypedArray): boolean {
  if (arrayKindOf(a) !== arrayKindOf(b) || a.byteLength !== b.byteLength) return false;
  const x = bytesOf(a);
  const y = bytesOf(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Whether two snapshots are identical: same parameters, flags, and values bit for bit. */
export function sameSnapshot(a: ModelSnapshot, b: ModelSnapshot): boolean {
  if (a.parameters.length !== b.parameters.length || a.values.size !== b.values.size) return false;
  const sameInfo = a.parameters.every((p, i) => {
    const q = b.parameters[i]!;
    return (
      p.name === q.name &&
      p.dtype === q.dtype &&
      p.kind === q.kind &&
      p.trainable === q.trainable &&
      p.shape.length === q.shape.length &&
      p.shape.every((d, j) => d === q.shape[j])
    );
  });
  if (!sameInfo) return false;
  for (const [name, value] of a.values) {
    const other = b.values.get(name);
    if (!other || !sameBytes(value, other)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Optimizer
// ---------------------------------------------------------------------------------------------

function copyHyper(hyper: Hyperparameters): Hyperparameters {
  const copy: Hyperparameters = {};
  for (const [key, value] of Object.entries(hyper)) {
    Object.defineProperty(copy, key, {
      value: Array.isArray(value) ? [...value] : value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  return copy;
}

function copyGroups(groups: readonly ParameterGroup[]): ParameterGroup[] {
  return groups.map((group) => ({ params: [...group.params], hyper: copyHyper(group.hyper) }));
}

function copyParameterState(state: ParameterState): ParameterState {
  return {
    scalars: { ...state.scalars },
    tensors: new Map([...state.tensors].map(([slot, array]) => [slot, array.slice()])),
  };
}

function copyOptimizerState(state: OptimizerState): OptimizerState {
  const copy: OptimizerState = {
    groups: copyGroups(state.groups),
    state: new Map([...state.state].map(([name, entry]) => [name, copyParameterState(entry)])),
  };
  if (state.type !== undefined) copy.type = state.type;
  return copy;
}

export interface MemoryOptimizerOptions extends TargetOptions {
  /** The model's parameters: every name the optimizer's state uses must be one of them. */
  params: readonly ParameterInfo[];
}

export class MemoryOptimizer implements OptimizerTarget {
  private current: OptimizerState;
  private readonly initialGroups: ParameterGroup[];
  private readonly params: ReadonlyMap<string, ParameterInfo>;
  private readonly faults: FaultInjection | undefined;

  constructor(
    readonly type: string,
    groups: readonly ParameterGroup[],
    options: MemoryOptimizerOptions,
  ) {
    this.params = new Map(options.params.map((info) => [info.name, info]));
    this.faults = options.faults;
    this.initialGroups = copyGroups(groups);
    this.current = this.fresh();
    this.validate(this.current);
  }

  /** A deep copy of the whole state. */
  getState(): OptimizerState {
    return copyOptimizerState(this.current);
  }

  /**
   * Takes the given state (its typed arrays are taken, not copied) after checking it: every
   * parameter named exists and is in one group at most, every state entry belongs to a grouped
   * parameter, every state tensor holds one value per element of its parameter.
   */
  async setState(state: OptimizerState): Promise<Undo> {
    this.validate(state);
    injectFaults(this.faults, "setState", state.state.keys());
    const next: OptimizerState = {
      groups: copyGroups(state.groups),
      state: new Map(
        [...state.state].map(([name, entry]) => [
          name,
          { scalars: { ...entry.scalars }, tensors: new Map(entry.tensors) },
        ]),
      ),
    };
    if (state.type !== undefined) next.type = state.type;
    return this.swap(next);
  }

  /** No per-parameter state; groups and hyperparameters as constructed. */
  async reset(): Promise<Undo> {
    injectFaults(this.faults, "reset", []);
    return this.swap(this.fresh());
  }

  private fresh(): OptimizerState {
    return { type: this.type, groups: copyGroups(this.initialGroups), state: new Map() };
  }

  private swap(next: OptimizerState): Undo {
    const previous = this.current;
    this.current = next;
    return once(() => {
      this.current = previous;
    });
  }

  private validate(state: OptimizerState): void {
    const grouped = new Set<string>();
    for (const group of state.groups) {
      for (const name of group.params) {
        if (!this.params.has(name)) throw unknownParameter(name);
        if (grouped.has(name)) {
          throw new LoadError("OPTIMIZER_BAD_STATE", `parameter '${name}' is in two param groups`, {
            key: name,
          });
        }
        grouped.add(name);
      }
    }
    for (const [name, entry] of state.state) {
      const info = this.params.get(name);
      if (!info) throw unknownParameter(name);
      if (!grouped.has(name)) {
        throw new LoadError(
          "OPTIMIZER_BAD_STATE",
          `state for '${name}', which no param group lists`,
          { key: name },
        );
      }
      for (const [slot, scalar] of Object.entries(entry.scalars)) {
        if (typeof scalar !== "number") {
          throw new LoadError(
            "OPTIMIZER_BAD_STATE",
            `scalar ${slot} of '${name}' is not a number`,
            { key: name },
          );
        }
      }
      const numel = numelOf(info.shape);
      const complex = dtypeInfo(info.dtype).kind === "complex";
      for (const [slot, array] of entry.tensors) {
        if (array.length !== numel && !(complex && array.length === numel * 2)) {
          throw new LoadError(
            "OPTIMIZER_BAD_STATE",
            `${slot} of '${name}' has ${array.length} elements; the parameter ${formatShape(info.shape)} has ${numel}`,
            { key: name },
          );
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scheduler
// ---------------------------------------------------------------------------------------------

function copySchedulerState(state: unknown): SchedulerState {
  const copy = copyPlainValue(state, "scheduler state");
  if (!isPlainObject(copy)) {
    throw new LoadError("NOT_PLAIN_DATA", "a scheduler state must be an object", {
      hint: "Pass the state as a plain object of plain data.",
    });
  }
  return copy;
}

export class MemoryScheduler implements SchedulerTarget {
  private current: SchedulerState;
  private readonly initial: SchedulerState;
  private readonly faults: FaultInjection | undefined;

  constructor(
    readonly type: string,
    initialState: SchedulerState,
    options: TargetOptions = {},
  ) {
    this.initial = copySchedulerState(initialState);
    this.current = copySchedulerState(this.initial);
    this.faults = options.faults;
  }

  getState(): SchedulerState {
    return copySchedulerState(this.current);
  }

  /** Replaces the state with a deep copy of `state` (plain data only). */
  async setState(state: SchedulerState): Promise<Undo> {
    const next = copySchedulerState(state);
    injectFaults(this.faults, "setState", []);
    return this.swap(next);
  }

  /** Back to the state given at construction. */
  async reset(): Promise<Undo> {
    injectFaults(this.faults, "reset", []);
    return this.swap(copySchedulerState(this.initial));
  }

  private swap(next: SchedulerState): Undo {
    const previous = this.current;
    this.current = next;
    return once(() => {
      this.current = previous;
    });
  }
}
