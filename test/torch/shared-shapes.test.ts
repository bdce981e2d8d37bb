import { describe, expect, it } from "vitest";
import { MemorySource } from "../../src/io/byte-source.js";
import { internPrefix, internShape } from "../../src/tensors/shape.js";
import { Tensor } from "../../src/tensors/tensor.js";

const storage = {
  source: new MemorySource(new Uint8Array(4 * 64)),
  dtype: "float32" as const,
  bigEndian: false,
};

describe("shapes shared between tensors", () => {
  it("gives tensors of one shape the same frozen shape and strides", () => {
    const a = new Tensor({ storage, shape: [8, 8] });
    const b = new Tensor({ storage, shape: Object.freeze([8, 8]), strides: [8, 1] });
    expect(a.shape).toEqual([8, 8]);
    // Row-major strides of [8, 8]: 8 elements per row, 1 per column.
    expect(a.strides).toEqual([8, 1]);
    expect(b.shape).toBe(a.shape);
    expect(b.strides).toBe(a.strides);
    expect(Object.isFrozen(a.shape)).toBe(true);
    expect(Object.isFrozen(a.strides)).toBe(true);
  });

  it("never hands out the caller's array, and copies it when it is not frozen", () => {
    const given = [4, 16];
    const shape = internShape(given);
    expect(shape).toEqual([4, 16]);
    expect(shape).not.toBe(given);
    given[0] = 5;
    expect(shape).toEqual([4, 16]);
    expect(internShape([4, 16])).toBe(shape);
    expect(internShape([])).toEqual([]);
    expect(internShape([])).toBe(internShape([]));
  });

  it("keeps shapes it does not intern exactly as given", () => {
    const negativeZero = internShape([-0, 3]);
    expect(Object.is(negativeZero[0], -0)).toBe(true);
    expect(Object.isFrozen(negativeZero)).toBe(true);
    expect(internShape([-1, 2])).toEqual([-1, 2]);
    expect(internShape([1.5])).toEqual([1.5]);
    const deep = Array.from({ length: 9 }, () => 1);
    expect(internShape(deep)).toEqual(deep);
  });

  it("interns the start of a reused buffer, whatever the buffer holds next", () => {
    const buffer = [3, 5, 7, 9];
    const first = internPrefix(buffer, 2);
    expect(first).toEqual([3, 5]);
    expect(first).toBe(internShape([3, 5]));
    buffer[0] = 4;
    expect(first).toEqual([3, 5]);
    expect(internPrefix(buffer, 3)).toEqual([4, 5, 7]);
    // Asked again after other shapes (the recent ones are checked first, then the trie).
    expect(internPrefix([3, 5, 0], 2)).toBe(first);
    expect(internPrefix([], 0)).toBe(internShape([]));
    expect(internPrefix([9, 9], 1)).toEqual([9]);
    // -0 is not 0, by the recent shapes as by the trie.
    internPrefix([0, 2], 2);
    const negativeZero = internPrefix([-0, 2], 2);
    expect(Object.is(negativeZero[0], -0)).toBe(true);
  });

  it("still refuses views that leave their storage", () => {
    // 64 float32 elements: [8, 9] needs 72.
    expect(() => new Tensor({ storage, shape: [8, 9] })).toThrow(/storage/);
    expect(() => new Tensor({ storage, shape: [-1, 8] })).toThrow(/invalid tensor view/);
  });
});
