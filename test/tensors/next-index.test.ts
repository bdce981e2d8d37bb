import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextIndex } from "../../src/tensors/shape.js";

/** Every index of `sizes` in row-major order, spelled out by counting in mixed radix. */
function rowMajor(sizes: readonly number[]): number[][] {
  const total = sizes.reduce((a, b) => a * b, 1);
  const all: number[][] = [];
  for (let n = 0; n < total; n++) {
    const index = new Array<number>(sizes.length);
    let rest = n;
    for (let k = sizes.length - 1; k >= 0; k--) {
      index[k] = rest % sizes[k]!;
      rest = Math.floor(rest / sizes[k]!);
    }
    all.push(index);
  }
  return all;
}

describe("nextIndex", () => {
  it("visits every index once, in row-major order, then reports the end", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }), (sizes) => {
        const seen: number[][] = [];
        const index = new Array<number>(sizes.length).fill(0);
        do seen.push([...index]);
        while (nextIndex(index, sizes));
        expect(seen).toEqual(rowMajor(sizes));
        expect(index).toEqual(sizes.map(() => 0));
      }),
    );
  });

  it("takes each position's size through `axes` when given", () => {
    const shape = [5, 2, 7, 3];
    const axes = [3, 1];
    const seen: number[][] = [];
    const index = [0, 0];
    do seen.push([...index]);
    while (nextIndex(index, shape, axes));
    expect(seen).toEqual(rowMajor([3, 2]));
  });
});
