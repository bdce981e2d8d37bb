import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError, TensorError } from "../../src/errors.js";
import { type ByteSource, MemorySource } from "../../src/io/byte-source.js";
import { floatToBfloat16Bits } from "../../src/tensors/convert.js";
import { gatherStrided } from "../../src/tensors/gather.js";
import { contiguousStrides, numelOf } from "../../src/tensors/shape.js";
import { swapBytes, Tensor } from "../../src/tensors/tensor.js";

function float32Storage(values: number[], bigEndian = false) {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  if (bigEndian) swapBytes(bytes, 4);
  return { source: new MemorySource(bytes, "test.pt"), dtype: "float32" as const, bigEndian };
}

/** Expected elements of a strided view, by index arithmetic. */
function expectedView(
  storage: ArrayLike<number>,
  shape: number[],
  strides: number[],
  offset: number,
): number[] {
  const out: number[] = [];
  const n = numelOf(shape);
  for (let linear = 0; linear < n; linear++) {
    let rest = linear;
    let at = offset;
    for (let d = shape.length - 1; d >= 0; d--) {
      at += (rest % shape[d]!) * strides[d]!;
      rest = Math.floor(rest / shape[d]!);
    }
    out.push(storage[at]!);
  }
  return out;
}

describe("Tensor", () => {
  const values = Array.from({ length: 24 }, (_, i) => i * 1.5 - 7);

  it("reads a contiguous tensor straight into the destination", async () => {
    const storage = float32Storage(values);
    const t = new Tensor({ storage, shape: [2, 3, 4] });
    expect(t.isContiguous).toBe(true);
    expect(t.numel).toBe(24);
    expect(t.byteLength).toBe(96);
    expect([...((await t.read()) as Float32Array)]).toEqual(values);
  });

  it("reads nothing until asked", async () => {
    const storage = float32Storage(values);
    new Tensor({ storage, shape: [24] });
    expect(storage.source.bytesRead).toBe(0);
  });

  it("reads a view with a storage offset", async () => {
    const t = new Tensor({ storage: float32Storage(values), shape: [2, 2], storageOffset: 5 });
    expect([...((await t.read()) as Float32Array)]).toEqual(values.slice(5, 9));
  });

  it("gathers a transposed view", async () => {
    const t = new Tensor({ storage: float32Storage(values), shape: [4, 6], strides: [1, 4] });
    expect(t.isContiguous).toBe(false);
    expect([...((await t.read()) as Float32Array)]).toEqual(
      expectedView(values, [4, 6], [1, 4], 0),
    );
  });

  it("gathers expanded (stride 0) and stepped views", async () => {
    const expanded = new Tensor({
      storage: float32Storage(values),
      shape: [3, 4],
      strides: [0, 1],
      storageOffset: 2,
    });
    expect([...((await expanded.read()) as Float32Array)]).toEqual(
      expectedView(values, [3, 4], [0, 1], 2),
    );
    const stepped = new Tensor({
      storage: float32Storage(values),
      shape: [2, 3],
      strides: [12, 2],
      storageOffset: 1,
    });
    expect([...((await stepped.read()) as Float32Array)]).toEqual(
      expectedView(values, [2, 3], [12, 2], 1),
    );
  });

  it("swaps big-endian storages on every read path", async () => {
    const storage = float32Storage(values, true);
    const contiguous = new Tensor({ storage, shape: [24] });
    expect([...((await contiguous.read()) as Float32Array)]).toEqual(values);
    const transposed = new Tensor({ storage, shape: [4, 6], strides: [1, 4] });
    expect([...((await transposed.read()) as Float32Array)]).toEqual(
      expectedView(values, [4, 6], [1, 4], 0),
    );
    const asDouble = (await contiguous.read({ dtype: "float64" })) as Float64Array;
    expect([...asDouble]).toEqual(values);
  });

  it("converts bfloat16 to float32 while reading", async () => {
    const bf16 = Uint16Array.from([1, -2, 0.5, 3].map(floatToBfloat16Bits));
    const storage = {
      source: new MemorySource(new Uint8Array(bf16.buffer)),
      dtype: "bfloat16" as const,
      bigEndian: false,
    };
    const t = new Tensor({ storage, shape: [4] });
    const raw = await t.read();
    expect(raw).toBeInstanceOf(Uint16Array);
    const out = new Float32Array(4);
    await t.readInto(out, { dtype: "float32" });
    expect([...out]).toEqual([1, -2, 0.5, 3]);
  });

  it("returns int64 as BigInt64Array", async () => {
    const data = BigInt64Array.from([-1n, 2n ** 62n]);
    const storage = {
      source: new MemorySource(new Uint8Array(data.buffer)),
      dtype: "int64" as const,
      bigEndian: false,
    };
    expect([...((await new Tensor({ storage, shape: [2] }).read()) as BigInt64Array)]).toEqual([
      -1n,
      2n ** 62n,
    ]);
  });

  it("refuses a destination of the wrong type or length, naming the fix", async () => {
    const t = new Tensor({ storage: float32Storage(values), shape: [24], key: "fc.weight" });
    await expect(t.readInto(new Float32Array(23))).rejects.toThrow(TensorError);
    const bf16 = {
      source: new MemorySource(new Uint8Array(8)),
      dtype: "bfloat16" as const,
      bigEndian: false,
    };
    await expect(
      new Tensor({ storage: bf16, shape: [4] }).readInto(new Float32Array(4)),
    ).rejects.toThrow(/dtype: 'float32'/);
  });

  it("checks the view against its storage before any read", () => {
    const storage = float32Storage(values);
    expect(() => new Tensor({ storage, shape: [5, 5], key: "w" })).toThrow(FormatError);
    expect(() => new Tensor({ storage, shape: [2], storageOffset: 23 })).toThrow(
      /storage holds 24/,
    );
    expect(() => new Tensor({ storage, shape: [2, 2], strides: [-1, 1] })).toThrow(FormatError);
    expect(() => new Tensor({ storage, shape: [0, 1000], storageOffset: 10 })).not.toThrow();
    expect(storage.source.bytesRead).toBe(0);
  });

  it("yields bounded chunks in order", async () => {
    const t = new Tensor({ storage: float32Storage(values), shape: [24] });
    const seen: number[] = [];
    for await (const chunk of t.chunks({ dtype: "float64" })) seen.push(...(chunk as Float64Array));
    expect(seen).toEqual(values);
  });
});

/** A source that counts reads, to check the windowing. */
function countingSource(bytes: Uint8Array): ByteSource & { reads: number } {
  const inner = new MemorySource(bytes);
  const source = {
    name: "counting",
    size: inner.size,
    reads: 0,
    bytesRead: 0,
    read: (o: number, l: number) => inner.read(o, l),
    readInto: (o: number, d: Uint8Array) => {
      source.reads++;
      return inner.readInto(o, d);
    },
    close: () => inner.close(),
  };
  return source;
}

describe("gatherStrided", () => {
  it("matches index arithmetic for random views and windows", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 4, max: 64 }),
        fc.integer({ min: 0, max: 1000 }),
        async (shape, offset, windowBytes, seed) => {
          // A random permutation of contiguous strides, sometimes with a broadcast dimension.
          const base = contiguousStrides(shape);
          const order = shape
            .map((_, i) => i)
            .sort((a, b) => ((a * 7919 + seed) % 13) - ((b * 7919 + seed) % 13));
          const strides = order.map((o) => base[o]!);
          if (seed % 5 === 0) strides[seed % shape.length] = 0;
          const reach = shape.reduce((sum, dim, d) => sum + (dim - 1) * strides[d]!, 0);
          const storageLength = offset + reach + 1 + (seed % 3);
          const storage = Uint32Array.from({ length: storageLength }, (_, i) => i * 3 + 1);
          const destination = new Uint8Array(numelOf(shape) * 4);
          const source = countingSource(new Uint8Array(storage.buffer));
          await gatherStrided({
            source,
            elementSize: 4,
            shape,
            strides,
            storageOffset: offset,
            destination,
            windowBytes,
          });
          const got = [...new Uint32Array(destination.buffer)];
          expect(got).toEqual(expectedView(storage, shape, strides, offset));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads a transposed matrix in few window-sized reads", async () => {
    const rows = 64;
    const cols = 256;
    const storage = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const source = countingSource(new Uint8Array(storage.buffer));
    const destination = new Uint8Array(rows * cols * 4);
    // View [cols, rows] with strides [1, cols]: the transpose.
    await gatherStrided({
      source,
      elementSize: 4,
      shape: [cols, rows],
      strides: [1, cols],
      storageOffset: 0,
      destination,
      windowBytes: 4096,
    });
    expect([...new Float32Array(destination.buffer)]).toEqual(
      expectedView(storage, [cols, rows], [1, cols], 0),
    );
    expect(source.reads).toBeLessThanOrEqual((rows * cols * 4) / 4096 + 2);
  });
});
