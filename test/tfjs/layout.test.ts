import { describe, expect, it } from "vitest";
import { permute, permutedShape } from "../../src/tfjs/layout.js";

/** Row-major offset of `index` in `shape`. */
function offset(index: readonly number[], shape: readonly number[]): number {
  return index.reduce((acc, i, d) => acc * shape[d]! + i, 0);
}

describe("axis permutations", () => {
  it("transposes [out, in] to [in, out]", () => {
    // [[1, 2, 3], [4, 5, 6]] → [[1, 4], [2, 5], [3, 6]]
    expect([...permute(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3], [1, 0])]).toEqual([
      1, 4, 2, 5, 3, 6,
    ]);
  });

  it("moves OIHW to HWIO: out[h, w, i, o] = in[o, i, h, w]", () => {
    const shape = [4, 3, 2, 5];
    const values = Float32Array.from({ length: 120 }, (_, k) => k);
    const out = permute(values, shape, [2, 3, 1, 0]);
    expect(permutedShape(shape, [2, 3, 1, 0])).toEqual([2, 5, 3, 4]);
    for (let o = 0; o < 4; o++) {
      for (let i = 0; i < 3; i++) {
        for (let h = 0; h < 2; h++) {
          for (let w = 0; w < 5; w++) {
            expect(out[offset([h, w, i, o], [2, 5, 3, 4])]).toBe(
              values[offset([o, i, h, w], shape)],
            );
          }
        }
      }
    }
  });

  it("keeps the array kind, handles 0-d and empty tensors, and refuses a non-permutation", () => {
    expect(permute(Int32Array.of(7), [], [])).toEqual(Int32Array.of(7));
    expect(permute(new Float32Array(0), [0, 3], [1, 0])).toEqual(new Float32Array(0));
    expect(() => permute(Float32Array.of(1, 2), [2, 1], [0, 0])).toThrow(/cannot permute/);
  });
});
