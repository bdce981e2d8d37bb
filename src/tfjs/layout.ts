import { LoadError } from "../errors.js";
import type { TypedArray } from "../tensors/dtype.js";
import { contiguousStrides, formatShape, nextIndex, numelOf } from "../tensors/shape.js";

/**
 * Axis permutations between PyTorch's and TensorFlow.js's weight layouts (row-major both):
 * Linear [out, in] → Dense [in, out] is the permutation [1, 0]; Conv2d [O, I, H, W] → Conv2D
 * [H, W, I, O] is [2, 3, 1, 0]. Output axis i is input axis perm[i].
 */

export function permutedShape(shape: readonly number[], perm: readonly number[]): number[] {
  return perm.map((axis) => shape[axis]!);
}

/** Whether `perm` reorders `rank` axes (each once). */
export function isPermutation(perm: readonly number[], rank: number): boolean {
  if (perm.length !== rank) return false;
  const seen = new Set(perm);
  return (
    seen.size === rank && perm.every((axis) => Number.isInteger(axis) && axis >= 0 && axis < rank)
  );
}

/**
 * Side of the square tiles the transposes work in: a tile's TILE rows of TILE elements stay in
 * cache while each line is used TILE times (16 to 64 measured alike on 1000 × 1000 to
 * 4096 × 1024 float32; the column-by-column walk it replaces took 4× as long).
 */
const TILE = 32;

/** Rows shorter than this are copied element by element (a subarray per row costs more). */
const SHORT_ROW = 64;

/** Element access shared by every typed array kind (source and destination are one kind). */
type Elements = Float32Array;

/** A permutation with size-1 axes dropped and axes that stay adjacent merged (same memory order). */
interface Coalesced {
  shape: number[];
  perm: number[];
}

/**
 * The same reordering of memory with fewer axes: OIHW → HWIO is [O, I, H·W] → [H·W, I, O], so
 * the tiles work on H·W elements rather than W. Output axis d is input axis perm[d], as above.
 */
function coalesce(shape: readonly number[], perm: readonly number[]): Coalesced {
  // Input axes of more than one element, renumbered 0.. in input order.
  const keptAxes = shape.map((_, axis) => axis).filter((axis) => shape[axis]! > 1);
  const renamed = new Map(keptAxes.map((axis, i) => [axis, i]));
  // Runs of consecutive input axes, in output order, become one axis each.
  const groups: { first: number; size: number }[] = [];
  let previous = -2;
  for (const axis of perm) {
    const kept = renamed.get(axis);
    if (kept === undefined) continue;
    const last = groups[groups.length - 1];
    if (last && kept === previous + 1) last.size *= shape[axis]!;
    else groups.push({ first: kept, size: shape[axis]! });
    previous = kept;
  }
  const byInput = [...groups].sort((a, b) => a.first - b.first);
  return {
    shape: byInput.map((g) => g.size),
    perm: groups.map((g) => byInput.indexOf(g)),
  };
}

/**
 * Transposes the [rows, cols] block at `inBase` (input row stride `inRowStride`, columns
 * contiguous) into [cols, rows] at `outBase` (output row stride `outRowStride`, rows contiguous),
 * tile by tile. Four input rows at a time: four sequential read streams, four adjacent writes.
 */
function transposeBlock(
  input: Elements,
  inBase: number,
  inRowStride: number,
  out: Elements,
  outBase: number,
  outRowStride: number,
  rows: number,
  cols: number,
): void {
  const s = inRowStride;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const rEnd = Math.min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const cEnd = Math.min(c0 + TILE, cols);
      let r = r0;
      for (; r + 4 <= rEnd; r += 4) {
        let i = inBase + r * s + c0;
        let o = outBase + c0 * outRowStride + r;
        for (let c = c0; c < cEnd; c++) {
          out[o] = input[i]!;
          out[o + 1] = input[i + s]!;
          out[o + 2] = input[i + 2 * s]!;
          out[o + 3] = input[i + 3 * s]!;
          i++;
          o += outRowStride;
        }
      }
      for (; r < rEnd; r++) {
        let i = inBase + r * s + c0;
        let o = outBase + c0 * outRowStride + r;
        for (let c = c0; c < cEnd; c++) {
          out[o] = input[i++]!;
          o += outRowStride;
        }
      }
    }
  }
}

/**
 * Transposes the n × n matrix in `values` where it is: each tile above the diagonal swaps with
 * its mirror below, four rows at a time. Saves the scratch array (and its page faults) that
 * reading the checkpoint's layout elsewhere first would cost.
 */
export function transposeSquareInPlace(values: TypedArray, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || values.length !== n * n) {
    throw new LoadError(
      "BAD_PERMUTATION",
      `cannot transpose ${values.length} values as a ${n} × ${n} matrix`,
    );
  }
  const a = values as Elements;
  for (let r0 = 0; r0 < n; r0 += TILE) {
    const rEnd = Math.min(r0 + TILE, n);
    // The diagonal tile: only the elements right of the diagonal swap.
    for (let r = r0; r < rEnd; r++) {
      let upper = r * n + r + 1;
      let lower = (r + 1) * n + r;
      for (let c = r + 1; c < rEnd; c++) {
        const t = a[upper]!;
        a[upper++] = a[lower]!;
        a[lower] = t;
        lower += n;
      }
    }
    for (let c0 = r0 + TILE; c0 < n; c0 += TILE) {
      const cEnd = Math.min(c0 + TILE, n);
      let r = r0;
      for (; r + 4 <= rEnd; r += 4) {
        let upper = r * n + c0;
        let lower = c0 * n + r;
        for (let c = c0; c < cEnd; c++) {
          const t0 = a[upper]!;
          const t1 = a[upper + n]!;
          const t2 = a[upper + 2 * n]!;
          const t3 = a[upper + 3 * n]!;
          a[upper] = a[lower]!;
          a[upper + n] = a[lower + 1]!;
          a[upper + 2 * n] = a[lower + 2]!;
          a[upper + 3 * n] = a[lower + 3]!;
          a[lower] = t0;
          a[lower + 1] = t1;
          a[lower + 2] = t2;
          a[lower + 3] = t3;
          upper++;
          lower += n;
        }
      }
      for (; r < rEnd; r++) {
        let upper = r * n + c0;
        let lower = c0 * n + r;
        for (let c = c0; c < cEnd; c++) {
          const t = a[upper]!;
          a[upper++] = a[lower]!;
          a[lower] = t;
          lower += n;
        }
      }
    }
  }
}

/**
 * Writes `source` (row-major, `shape`) into `destination` with its axes reordered by `perm`.
 * One element per value (no complex or packed types), `source` and `destination` of one kind.
 *
 * Axes that stay adjacent are merged first. When the innermost axis stays innermost, rows are
 * copied whole; otherwise every pair of (output's innermost, input's innermost) axes is a 2-D
 * transpose done in cache-sized tiles, so neither side is walked an element per cache line. The
 * other axes are walked by an odometer (iterative, whatever the rank).
 */
export function permuteInto(
  source: TypedArray,
  shape: readonly number[],
  perm: readonly number[],
  destination: TypedArray,
): void {
  const numel = numelOf(shape);
  if (
    !isPermutation(perm, shape.length) ||
    source.length !== numel ||
    destination.length !== numel
  ) {
    throw new LoadError(
      "BAD_PERMUTATION",
      `cannot permute ${source.length} values of shape ${formatShape(shape)} by [${perm}] into ${destination.length}`,
    );
  }
  if (numel === 0) return;
  const input = source as Elements;
  const out = destination as Elements;
  const merged = coalesce(shape, perm);
  const rank = merged.perm.length;
  if (rank <= 1) {
    // Nothing moves in memory (a 0-d tensor, or every axis but one of size 1).
    out.set(input);
    return;
  }
  const inStrides = contiguousStrides(merged.shape);
  const outShape = permutedShape(merged.shape, merged.perm);
  const outStrides = contiguousStrides(outShape);
  const last = rank - 1;
  // Output axis that is the input's innermost (input stride 1), and the output's innermost.
  const inner = merged.perm.indexOf(last);
  const rowCopy = inner === last;
  // The axes the odometer walks: every output axis but the one or two the kernel handles.
  const outer = outShape.map((_, d) => d).filter((d) => d !== last && (rowCopy || d !== inner));
  const index = new Array<number>(outer.length).fill(0);
  const inStep = outer.map((d) => inStrides[merged.perm[d]!]!);
  const outStep = outer.map((d) => outStrides[d]!);
  const rows = outShape[last]!;
  const rowStride = inStrides[merged.perm[last]!]!;
  for (;;) {
    let inBase = 0;
    let outBase = 0;
    for (let k = 0; k < outer.length; k++) {
      inBase += index[k]! * inStep[k]!;
      outBase += index[k]! * outStep[k]!;
    }
    if (rowCopy && rows >= SHORT_ROW) {
      out.set(input.subarray(inBase, inBase + rows), outBase);
    } else if (rowCopy) {
      for (let r = 0; r < rows; r++) out[outBase + r] = input[inBase + r]!;
    } else {
      transposeBlock(
        input,
        inBase,
        rowStride,
        out,
        outBase,
        outStrides[inner]!,
        rows,
        outShape[inner]!,
      );
    }
    if (!nextIndex(index, outShape, outer)) return;
  }
}

/** `source` with its axes reordered by `perm`, in a new array of the same kind. */
export function permute<T extends TypedArray>(
  source: T,
  shape: readonly number[],
  perm: readonly number[],
): T {
  const Ctor = source.constructor as new (length: number) => T;
  const destination = new Ctor(source.length);
  permuteInto(source, shape, perm, destination);
  return destination;
}
