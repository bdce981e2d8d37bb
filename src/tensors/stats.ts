import { dtypeInfo } from "./dtype.js";
import type { Tensor } from "./tensor.js";

export interface TensorStats {
  sum: number;
  min: number;
  max: number;
  mean: number;
}

/**
 * Sum, min, max and mean of a tensor in float64 (bool as 0/1), streamed in bounded chunks.
 * NaN propagates as in torch. Undefined for empty tensors and for types with no numeric
 * decoding (complex, float8 and other raw formats).
 */
export async function tensorStats(tensor: Tensor): Promise<TensorStats | undefined> {
  const kind = dtypeInfo(tensor.dtype).kind;
  if (tensor.numel === 0 || kind === "raw" || kind === "complex") return undefined;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sawNaN = false;
  for await (const chunk of tensor.chunks({ dtype: "float64" })) {
    const values = chunk as Float64Array;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
      if (Number.isNaN(v)) sawNaN = true;
    }
  }
  if (sawNaN) return { sum: Number.NaN, min: Number.NaN, max: Number.NaN, mean: Number.NaN };
  return { sum, min, max, mean: sum / tensor.numel };
}
