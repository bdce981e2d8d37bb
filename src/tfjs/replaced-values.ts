import * as tf from "@tensorflow/tfjs";
import type { TypedArray } from "../tensors/dtype.js";
import { wasmMemoryHeadroom } from "./internals.js";

/**
 * Assigning new values to tfjs variables while keeping the values they replace, without copying
 * them: each replaced value stays in the backend as a tensor that shares the variable's data
 * (`tf.reshape` to the same shape is a new reference to the same data, counted by the backend,
 * on the cpu and wasm backends; `tf.clone` would copy on wasm). The variable then points at the
 * new data, and the old data lives on until the kept tensor is disposed.
 *
 * The wasm backend's memory cannot pass 4 GiB and never shrinks: when old and new values would
 * not both fit with WASM_RESERVE to spare, the old ones are copied out to JavaScript memory
 * instead (one copy each), and their heap space is reused by the new ones.
 */

/** Wasm memory left free when replaced values stay in it (256 MiB: room for tfjs's own work). */
const WASM_RESERVE = 256 * 2 ** 20;

export interface Assignment {
  variable: tf.Variable;
  values: TypedArray;
  shape: readonly number[];
  dtype: "float32" | "int32";
}

/** What one write replaced: restore it (undo) or release it (the write is final); once. */
export interface Replaced {
  /** Assigns the previous values back and drops them. */
  restore(): void;
  /** Drops the previous values. */
  release(): void;
  /** True once restore() ran. */
  readonly restored: boolean;
}

/**
 * A tensor holding `values` as they are: the cpu backend keeps the array itself as the tensor's
 * storage (no copy; the caller must not reuse it); wasm copies it into its heap once.
 */
function tensorOf(assignment: Assignment): tf.Tensor {
  return tf.tensor(
    assignment.values as Float32Array | Int32Array,
    [...assignment.shape],
    assignment.dtype,
  );
}

/** The value a variable had: a tensor sharing its data, or (wasm memory short) a copy. */
type Previous = { tensor: tf.Tensor } | { copy: TypedArray };

/** A second reference to the variable's current data (no copy), kept out of any tidy scope. */
function keepCurrent(variable: tf.Variable, inBackend: boolean): Previous {
  if (inBackend) return { tensor: tf.keep(tf.reshape(variable, variable.shape)) };
  // A copy whatever the backend (the cpu backend's dataSync returns its own storage).
  return { copy: (variable.dataSync() as Float32Array | Int32Array).slice() };
}

/** Whether replaced values can stay in the backend while `bytes` of new values are added. */
function keepInBackend(bytes: number): boolean {
  const headroom = wasmMemoryHeadroom();
  return headroom === undefined || headroom - bytes >= WASM_RESERVE;
}

/** `variable.assign(value)`, dropping our reference to `value` (the variable holds its own). */
function assignAndDrop(variable: tf.Variable, value: tf.Tensor): void {
  try {
    variable.assign(value);
  } finally {
    value.dispose();
  }
}

/**
 * Assigns every value (no constraint applied: values load as they are), keeping what each
 * replaces: in the backend, or copied out when `inBackend` is false (by default: when the wasm
 * memory would run short). If one assignment fails, those before it are put back and the error
 * is rethrown.
 */
export function assignKeepingPrevious(
  assignments: readonly Assignment[],
  inBackend = keepInBackend(assignments.reduce((sum, a) => sum + a.values.byteLength, 0)),
): Replaced {
  const kept: { assignment: Assignment; previous: Previous }[] = [];
  const restoreOne = ({ assignment, previous }: (typeof kept)[number]) => {
    const value =
      "tensor" in previous ? previous.tensor : tensorOf({ ...assignment, values: previous.copy });
    assignAndDrop(assignment.variable, value);
  };
  // Newest first; every one even if one fails (it cannot: same shape and dtype), then rethrow.
  const putBack = () => {
    let failure: unknown;
    for (let i = kept.length - 1; i >= 0; i--) {
      try {
        restoreOne(kept[i]!);
      } catch (error) {
        failure ??= error;
      }
    }
    kept.length = 0;
    if (failure !== undefined) throw failure;
  };
  try {
    for (const assignment of assignments) {
      const previous = keepCurrent(assignment.variable, inBackend);
      try {
        assignAndDrop(assignment.variable, tensorOf(assignment));
      } catch (error) {
        if ("tensor" in previous) previous.tensor.dispose();
        throw error;
      }
      kept.push({ assignment, previous });
    }
  } catch (error) {
    putBack();
    throw error;
  }
  let settled = false;
  let restored = false;
  return {
    restore() {
      if (settled) return;
      settled = true;
      restored = true;
      putBack();
    },
    release() {
      if (settled) return;
      settled = true;
      for (const { previous } of kept) if ("tensor" in previous) previous.tensor.dispose();
      kept.length = 0;
    },
    get restored() {
      return restored;
    },
  };
}
