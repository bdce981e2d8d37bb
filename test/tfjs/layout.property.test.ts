import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { permute, permuteInto, transposeSquareInPlace } from "../../src/tfjs/layout.js";
import { referencePermute } from "./permute-reference.js";

/**
 * The tiled permutation (cache blocks, merged axes, in-place square transposes) against the
 * element-by-element reference, on random shapes and permutations. Dimensions reach past the
 * 32-element tiles and their 4-row groups, and include 0 and 1 (size-1 axes are merged away).
 */

const dim = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 31, 32, 33, 37) },
);

/** A shape of rank 0-5 with at most ~60,000 elements, and a permutation of its axes. */
const shapeAndPerm = fc
  .array(dim, { minLength: 0, maxLength: 5 })
  .filter((shape) => shape.reduce((a, b) => a * b, 1) <= 60_000)
  .chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      fc.shuffledSubarray(
        shape.map((_, axis) => axis),
        { minLength: shape.length, maxLength: shape.length },
      ),
    ),
  );

/** Distinct values, so that any misplaced element shows. */
function counting(numel: number, kind: "float32" | "int32"): Float32Array | Int32Array {
  const values = kind === "int32" ? new Int32Array(numel) : new Float32Array(numel);
  for (let i = 0; i < numel; i++) values[i] = kind === "int32" ? i * 7 - 3 : i + 0.5;
  return values;
}

describe("permuteInto (tiled) agrees with the element-by-element reference", () => {
  it("on random shapes and permutations, float32 and int32", () => {
    fc.assert(
      fc.property(shapeAndPerm, fc.constantFrom("float32", "int32"), ([shape, perm], kind) => {
        const numel = shape.reduce((a, b) => a * b, 1);
        const source = counting(numel, kind as "float32" | "int32");
        const destination = new (source.constructor as Float32ArrayConstructor)(numel).fill(-1);
        permuteInto(source, shape, perm, destination);
        expect(destination).toEqual(referencePermute(source, shape, perm));
        expect(permute(source, shape, perm)).toEqual(destination);
      }),
      { numRuns: 400 },
    );
  });

  it("on the layouts the PyTorch mapping uses, at sizes spanning several tiles", () => {
    const cases: [number[], number[]][] = [
      [
        [67, 130],
        [1, 0],
      ], // Linear [out, in] → Dense [in, out], not a multiple of the tile
      [
        [128, 64],
        [1, 0],
      ],
      [
        [20, 12, 3, 3],
        [2, 3, 1, 0],
      ], // Conv2d OIHW → HWIO
      [
        [9, 40, 5],
        [2, 1, 0],
      ], // Conv1d OIW → WIO
      [
        [1, 50, 1, 70],
        [3, 1, 0, 2],
      ],
    ];
    for (const [shape, perm] of cases) {
      const source = counting(
        shape.reduce((a, b) => a * b, 1),
        "float32",
      );
      expect(permute(source, shape, perm)).toEqual(referencePermute(source, shape, perm));
    }
  });
});

describe("transposeSquareInPlace", () => {
  it("equals the reference transpose for every n × n, n from 0 to 100", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.constantFrom("float32", "int32"),
        (n, kind) => {
          const values = counting(n * n, kind as "float32" | "int32");
          const expected = referencePermute(values, [n, n], [1, 0]);
          transposeSquareInPlace(values, n);
          expect(values).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("refuses an array that is not n × n", () => {
    expect(() => transposeSquareInPlace(new Float32Array(6), 2)).toThrow(
      expect.objectContaining({ code: "BAD_PERMUTATION" }),
    );
  });
});
