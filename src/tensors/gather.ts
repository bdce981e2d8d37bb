import type { ByteSource } from "../io/byte-source.js";
import { contiguousStrides, nextIndex } from "./shape.js";

/** Largest storage window read at once while gathering a strided view. */
const WINDOW_BYTES = 16 << 20;

export interface GatherRequest {
  source: ByteSource;
  elementSize: number;
  shape: readonly number[];
  strides: readonly number[];
  /** In elements. */
  storageOffset: number;
  /** Receives the view's elements in row-major order; numel × elementSize bytes. */
  destination: Uint8Array;
  /** Largest storage window read at once (tests make it small to exercise windowing). */
  windowBytes?: number;
}

/**
 * Copies a strided view (transposed, sliced, expanded) out of its storage into row-major order
 * with memory bounded by one window: the dimensions with the largest strides are walked, and for
 * each step the storage span the remaining dimensions cover is read once. Consecutive steps of
 * the innermost walked dimension share one read when they fit the window together.
 */
export async function gatherStrided(request: GatherRequest): Promise<void> {
  const { source, elementSize: es, shape, strides, storageOffset, destination } = request;
  const windowBytes = request.windowBytes ?? WINDOW_BYTES;
  const outStrides = contiguousStrides(shape);
  // Only dimensions that vary matter; walk the widest strides first.
  const dims = shape
    .map((_, d) => d)
    .filter((d) => shape[d]! > 1)
    .sort((a, b) => strides[b]! - strides[a]! || a - b);
  const span = (from: number) => {
    let last = 0;
    for (let i = from; i < dims.length; i++) last += (shape[dims[i]!]! - 1) * strides[dims[i]!]!;
    return last + 1;
  };
  let k = 0;
  while (k < dims.length && span(k) * es > windowBytes) k++;
  const inner = dims.slice(k).sort((a, b) => a - b);
  const innerSpan = span(k);
  const outer = dims.slice(0, k);

  // Batch consecutive indices of the last walked dimension into one read when they fit.
  const batchDim = outer.length > 0 ? outer[outer.length - 1]! : -1;
  const batchStride = batchDim >= 0 ? strides[batchDim]! : 0;
  const batchSize =
    batchDim >= 0
      ? Math.max(
          1,
          Math.min(
            shape[batchDim]!,
            Math.floor((windowBytes / es - innerSpan) / Math.max(batchStride, 1)) + 1,
          ),
        )
      : 1;
  const windowElements = innerSpan + (batchSize - 1) * batchStride;
  const window = new Uint8Array(windowElements * es);

  const walked = outer.slice(0, -1);
  const index = new Array<number>(walked.length).fill(0);
  for (;;) {
    let base = storageOffset;
    let outBase = 0;
    for (let i = 0; i < walked.length; i++) {
      base += index[i]! * strides[walked[i]!]!;
      outBase += index[i]! * outStrides[walked[i]!]!;
    }
    const batchExtent = batchDim >= 0 ? shape[batchDim]! : 1;
    for (let b0 = 0; b0 < batchExtent; b0 += batchSize) {
      const count = Math.min(batchSize, batchExtent - b0);
      const start = base + b0 * batchStride;
      const length = innerSpan + (count - 1) * batchStride;
      const bytes = window.subarray(0, length * es);
      await source.readInto(start * es, bytes);
      for (let b = 0; b < count; b++) {
        const outStart = outBase + (b0 + b) * (batchDim >= 0 ? outStrides[batchDim]! : 0);
        copyInner(
          bytes,
          b * batchStride,
          inner,
          shape,
          strides,
          outStrides,
          destination,
          outStart,
          es,
        );
      }
    }
    if (!nextIndex(index, shape, walked)) break;
  }
}

/** Copies every element of the inner dimensions from `window` to `destination`. */
function copyInner(
  window: Uint8Array,
  windowStart: number,
  inner: readonly number[],
  shape: readonly number[],
  strides: readonly number[],
  outStrides: readonly number[],
  destination: Uint8Array,
  outStart: number,
  es: number,
): void {
  const n = inner.length;
  if (n === 0) {
    destination.set(window.subarray(windowStart * es, windowStart * es + es), outStart * es);
    return;
  }
  // The last inner dimension is a run; when it is contiguous in both places, copy it whole.
  const runDim = inner[n - 1]!;
  const runLength = shape[runDim]!;
  const runStride = strides[runDim]!;
  const runOutStride = outStrides[runDim]!;
  const contiguousRun = runStride === 1 && runOutStride === 1;
  const index = new Array<number>(n - 1).fill(0);
  for (;;) {
    let src = windowStart;
    let out = outStart;
    for (let i = 0; i < n - 1; i++) {
      src += index[i]! * strides[inner[i]!]!;
      out += index[i]! * outStrides[inner[i]!]!;
    }
    if (contiguousRun) {
      destination.set(window.subarray(src * es, (src + runLength) * es), out * es);
    } else {
      for (let j = 0; j < runLength; j++) {
        const s = (src + j * runStride) * es;
        const o = (out + j * runOutStride) * es;
        for (let byte = 0; byte < es; byte++) destination[o + byte] = window[s + byte]!;
      }
    }
    if (!nextIndex(index, shape, inner)) return;
  }
}
