/**
 * The axis permutation loadout shipped before the tiled one (src/tfjs/layout.ts), kept as the
 * reference the property tests compare against: it walks the output in order, one element at a
 * time, reading each from its source offset. Simple enough to check by reading.
 */
export function referencePermute(
  source: Float32Array | Int32Array,
  shape: readonly number[],
  perm: readonly number[],
): Float32Array | Int32Array {
  const rank = shape.length;
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new (source.constructor as Float32ArrayConstructor)(numel);
  if (numel === 0) return out;
  if (rank === 0) {
    out[0] = source[0]!;
    return out;
  }
  const sourceStrides = new Array<number>(rank);
  let stride = 1;
  for (let d = rank - 1; d >= 0; d--) {
    sourceStrides[d] = stride;
    stride *= shape[d]!;
  }
  const outShape = perm.map((axis) => shape[axis]!);
  const step = perm.map((axis) => sourceStrides[axis]!);
  const index = new Array<number>(rank).fill(0);
  for (let written = 0; written < numel; written++) {
    let offset = 0;
    for (let d = 0; d < rank; d++) offset += index[d]! * step[d]!;
    out[written] = source[offset]!;
    for (let d = rank - 1; d >= 0; d--) {
      index[d]!++;
      if (index[d]! < outShape[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}
