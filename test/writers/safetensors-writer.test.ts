import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LoadoutError } from "../../src/errors.js";
import {
  allocate,
  bytesOf,
  DTYPES,
  type DType,
  dtypeInfo,
  itemSize,
  type TypedArray,
} from "../../src/tensors/dtype.js";
import { compareCodePoints, isWellFormed } from "../../src/writers/safetensors-layout.js";
import { writeSafetensors } from "../../src/writers/safetensors-writer.js";
import { createMemorySink } from "../../src/writers/sink.js";
import type { ChunkedTensorLike } from "../../src/writers/tensor-bytes.js";
import { headerOf, memoryTensor, readBack, recordingSink } from "./helpers.js";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
const u64le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24, 0, 0, 0, 0];

async function writeToMemory(
  ...args: [Parameters<typeof writeSafetensors>[1], Parameters<typeof writeSafetensors>[2]?]
): Promise<Uint8Array> {
  const sink = createMemorySink();
  await writeSafetensors(sink, ...args);
  return sink.bytes();
}

/** Every dtype the reference crate can store (it has no C128). */
const WRITABLE = [...DTYPES.keys()].filter((d) => d !== "complex128");

/** A tensor of `dtype` and `shape` whose bytes are a simple function of `seed`. */
function patterned(dtype: DType, shape: number[], seed: number): TypedArray {
  const numel = shape.reduce((a, b) => a * b, 1);
  const array = allocate(dtype, numel);
  const bytes = bytesOf(array);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
  // bool must hold 0 or 1 to be a valid torch bool.
  if (dtype === "bool") for (let i = 0; i < bytes.length; i++) bytes[i]! &= 1;
  return array;
}

/** Shapes of every kind; 4- and 6-bit dtypes fill whole bytes only when 4 divides numel. */
const SHAPES: number[][] = [[], [0], [4], [2, 2], [3, 0, 5], [2, 3, 4]];
const shapesFor = (dtype: DType) =>
  dtypeInfo(dtype).bits % 8 === 0 ? SHAPES : SHAPES.filter((s) => s.length > 0);

describe("writeSafetensors: exact bytes", () => {
  it("writes the layout the format specifies, byte for byte", async () => {
    const bytes = await writeToMemory(
      new Map([
        ["b", memoryTensor("int8", [], new Int8Array([7]))],
        ["a", memoryTensor("float32", [2], new Float32Array([1, -2]))],
      ]),
      { metadata: { k: "v" } },
    );
    // Reference order: F32 sorts before I8 (wider dtypes first).
    const json =
      '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I8","shape":[],"data_offsets":[8,9]}}';
    expect(json.length).toBe(130);
    // 130 bytes of JSON, padded with 6 spaces to 136 (a multiple of 8).
    const expected = [
      ...u64le(136),
      ...ascii(json),
      ...ascii("      "),
      ...[0x00, 0x00, 0x80, 0x3f], // 1.0f = 0x3f800000, little-endian
      ...[0x00, 0x00, 0x00, 0xc0], // -2.0f = 0xc0000000
      0x07,
    ];
    expect([...bytes]).toEqual(expected);
  });

  it('keeps the caller\'s order with order: "given"', async () => {
    const bytes = await writeToMemory(
      [
        ["b", memoryTensor("int8", [], new Int8Array([7]))],
        ["a", memoryTensor("float32", [2], new Float32Array([1, -2]))],
      ],
      { order: "given" },
    );
    const json =
      '{"b":{"dtype":"I8","shape":[],"data_offsets":[0,1]},"a":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}';
    // 105 bytes, padded with 7 spaces to 112.
    expect(json.length).toBe(105);
    const expected = [
      ...u64le(112),
      ...ascii(json),
      ...ascii("       "),
      ...[0x07, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0],
    ];
    expect([...bytes]).toEqual(expected);
  });

  it("reproduces safetensors.torch.save_file's file exactly (reference fixture)", async () => {
    const reference = new Uint8Array(readFileSync(fixture("reference.safetensors")));
    const { tensors, metadata } = await readBack(reference);
    expect(metadata).toEqual({ format: "pt" });
    // Fed in reverse header order, so the reference sort has to be redone.
    const reversed = [...tensors].reverse();
    const fromLazy = await writeToMemory(reversed, { metadata: { format: "pt" } });
    expect(Buffer.from(fromLazy).equals(Buffer.from(reference))).toBe(true);

    // The same through read() instead of chunks().
    const inMemory = await Promise.all(
      reversed.map(
        async ([name, t]) => [name, memoryTensor(t.dtype, [...t.shape], await t.read())] as const,
      ),
    );
    const fromMemory = await writeToMemory(inMemory, { metadata: { format: "pt" } });
    expect(Buffer.from(fromMemory).equals(Buffer.from(reference))).toBe(true);
  });
});

describe("writeSafetensors: round trips through the reader", () => {
  it("keeps every dtype and shape, including 0-d and empty tensors", async () => {
    const entries: [string, ReturnType<typeof memoryTensor>][] = [];
    const expected = new Map<string, { dtype: DType; shape: number[]; bytes: Uint8Array }>();
    for (const [d, dtype] of WRITABLE.entries()) {
      for (const [s, shape] of shapesFor(dtype).entries()) {
        const data = patterned(dtype, shape, d * 10 + s);
        const name = `${dtype}/${shape.join("x") || "scalar"}`;
        entries.push([name, memoryTensor(dtype, shape, data)]);
        expected.set(name, { dtype, shape, bytes: bytesOf(data).slice() });
      }
    }
    for (const order of ["safetensors", "given"] as const) {
      const bytes = await writeToMemory(entries, { order, metadata: { a: "1", é: "😀" } });
      const back = await readBack(bytes);
      expect(back.metadata).toEqual({ a: "1", é: "😀" });
      expect(new Set(back.names)).toEqual(new Set(expected.keys()));
      if (order === "given") expect(back.names).toEqual([...expected.keys()]);
      for (const [name, want] of expected) {
        const tensor = back.tensors.get(name)!;
        expect(tensor.dtype).toBe(want.dtype);
        expect(tensor.shape).toEqual(want.shape);
        expect(back.data.get(name)).toEqual(want.bytes);
      }
    }
  });

  it("writes lazy checkpoint tensors back to the same bytes", async () => {
    const entries = WRITABLE.map(
      (dtype, i) => [dtype, memoryTensor(dtype, [2, 4], patterned(dtype, [2, 4], i))] as const,
    );
    const first = await writeToMemory(entries, { metadata: { x: "y" } });
    const { tensors } = await readBack(first);
    const second = await writeToMemory(tensors, { metadata: { x: "y" } });
    expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
  });

  it("writes no __metadata__ without metadata, and {} for empty metadata (as the reference)", async () => {
    const t = memoryTensor("uint8", [1], new Uint8Array([9]));
    const without = headerOf(await writeToMemory([["t", t]])).text;
    expect(without.trimEnd()).toBe('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}');
    const empty = headerOf(await writeToMemory([["t", t]], { metadata: {} })).text;
    expect(empty.trimEnd()).toBe(
      '{"__metadata__":{},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
    );
  });

  it("writes a file with no tensors", async () => {
    const bytes = await writeToMemory([]);
    // "{}" padded to 8 bytes.
    expect([...bytes]).toEqual([...u64le(8), ...ascii("{}      ")]);
    expect((await readBack(bytes)).names).toEqual([]);
  });

  it("pads every header to a multiple of 8 with spaces, and aligns every tensor (property)", async () => {
    const dtypeArb = fc.constantFrom(...WRITABLE);
    const nameArb = fc
      .string({ unit: "binary", maxLength: 12 })
      .filter((n) => n !== "__metadata__" && isWellFormed(n));
    const entryArb = dtypeArb.chain((dtype) =>
      fc.record({
        name: nameArb,
        dtype: fc.constant(dtype),
        shape: fc.constantFrom(...shapesFor(dtype)),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(entryArb, { selector: (e) => e.name, maxLength: 8 }),
        fc.dictionary(nameArb, fc.string({ unit: "binary", maxLength: 8 }).filter(isWellFormed), {
          maxKeys: 3,
        }),
        async (specs, metadata) => {
          const entries = specs.map(
            (s, i) =>
              [s.name, memoryTensor(s.dtype, s.shape, patterned(s.dtype, s.shape, i))] as const,
          );
          const bytes = await writeToMemory(entries, { metadata });
          const { n, text } = headerOf(bytes);
          expect(n % 8).toBe(0);
          const json = new TextEncoder().encode(text.trimEnd());
          expect(n - json.length).toBeLessThan(8);
          expect(bytes.subarray(8 + json.length, 8 + n).every((b) => b === 0x20)).toBe(true);
          const back = await readBack(bytes);
          expect(back.metadata).toEqual(metadata);
          const parsed = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
          for (const [i, s] of specs.entries()) {
            expect(back.data.get(s.name)).toEqual(bytesOf(patterned(s.dtype, s.shape, i)));
            // The reference order puts every element at a multiple of its size in the file.
            const start = 8 + n + parsed[s.name]!.data_offsets[0];
            if (dtypeInfo(s.dtype).bits % 8 === 0) expect(start % itemSize(s.dtype)).toBe(0);
          }
          // Header order is the reference's: descending dtype, then names by code point.
          const order = back.names.map((name) => specs.find((s) => s.name === name)!);
          for (let i = 1; i < order.length; i++) {
            const [a, b] = [order[i - 1]!, order[i]!];
            const rank = (d: DType) => RUST_ORDER.indexOf(dtypeInfo(d).safetensors);
            expect(
              rank(a.dtype) > rank(b.dtype) ||
                (rank(a.dtype) === rank(b.dtype) && compareCodePoints(a.name, b.name) < 0),
            ).toBe(true);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** The Rust crate's Dtype enum, in declaration order (its serializer sorts by it, descending). */
const RUST_ORDER = [
  "BOOL",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F8_E4M3FNUZ",
  "F8_E5M2FNUZ",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "C64",
  "F64",
  "I64",
  "U64",
];

describe("compareCodePoints", () => {
  it("orders as UTF-8 bytes do, not as UTF-16 units", () => {
    // U+E000 is EE 80 80 in UTF-8, U+1F600 is F0 9F 98 80: U+E000 first. UTF-16 says the opposite.
    expect(compareCodePoints("z\ue000", "z\u{1f600}")).toBeLessThan(0);
    expect("z\ue000" < "z\u{1f600}").toBe(false);
    expect(compareCodePoints("a", "ab")).toBeLessThan(0);
    expect(compareCodePoints("b", "a")).toBeGreaterThan(0);
    expect(compareCodePoints("same", "same")).toBe(0);
  });
});

describe("writeSafetensors: dtype conversion", () => {
  const floats = new Float32Array([1.5, 1 / 3, 65520, -0, Number.POSITIVE_INFINITY]);
  const entries = () => [
    ["f", memoryTensor("float32", [5], floats)] as const,
    ["i", memoryTensor("int32", [2], new Int32Array([3, -4]))] as const,
    ["c", memoryTensor("complex64", [1], new Float32Array([1, 2]))] as const,
  ];

  it("converts floating tensors to bfloat16 and leaves the others alone", async () => {
    const back = await readBack(await writeToMemory(entries(), { dtype: "bfloat16" }));
    expect(back.tensors.get("f")!.dtype).toBe("bfloat16");
    // bf16 is the top half of the f32 bits, rounded to nearest even:
    // 1.5 = 0x3fc00000 -> 0x3fc0; 1/3 = 0x3eaaaaab -> low half 0xaaab > 0x8000, rounds up to 0x3eab;
    // 65520 = 0x477ff000 -> 0x4780 (rounds up); -0 -> 0x8000; inf = 0x7f800000 -> 0x7f80.
    expect([...new Uint16Array((await back.tensors.get("f")!.read()).buffer)]).toEqual([
      0x3fc0, 0x3eab, 0x4780, 0x8000, 0x7f80,
    ]);
    expect(back.tensors.get("i")!.dtype).toBe("int32");
    expect([...(await back.tensors.get("i")!.read())]).toEqual([3, -4]);
    expect(back.tensors.get("c")!.dtype).toBe("complex64");
  });

  it("converts to float16, through the streaming path of lazy tensors too", async () => {
    const original = await readBack(await writeToMemory(entries()));
    const back = await readBack(await writeToMemory(original.tensors, { dtype: "float16" }));
    // 1.5 -> 0x3e00; 1/3 -> 0x3555 (f32 mantissa 0x2aaaab rounds down to 0x155);
    // 65520 is halfway between 65504 and 65536, which rounds (to even) past the largest half: inf.
    expect([...new Uint16Array((await back.tensors.get("f")!.read()).buffer)]).toEqual([
      0x3e00, 0x3555, 0x7c00, 0x8000, 0x7c00,
    ]);
  });

  it("refuses a target that is not a float dtype, and floats it cannot decode", async () => {
    await expect(writeToMemory(entries(), { dtype: "int8" })).rejects.toMatchObject({
      code: "INVALID_DTYPE",
    });
    const f8 = memoryTensor("float8_e4m3fn", [1], new Uint8Array([0x38]));
    await expect(writeToMemory([["f8", f8]], { dtype: "float32" })).rejects.toMatchObject({
      code: "UNSUPPORTED_CONVERSION",
      key: "f8",
    });
  });
});

describe("writeSafetensors: streaming", () => {
  it("writes each chunk before asking for the next (one chunk in memory at a time)", async () => {
    const sink = recordingSink();
    const tensor: ChunkedTensorLike = {
      dtype: "uint8",
      shape: [64],
      read: () => Promise.reject(new Error("read() must not be used when chunks() exists")),
      async *chunks() {
        const buffer = new Uint8Array(16);
        for (let k = 0; k < 4; k++) {
          // The header and chunks 0..k-1 have all reached the sink already.
          expect(sink.writes.length).toBe(1 + k);
          buffer.fill(k);
          yield buffer;
        }
      },
    };
    await writeSafetensors(sink, [["t", tensor]]);
    expect(sink.closed).toBe(true);
    const back = await readBack(sink.bytes());
    expect([...back.data.get("t")!]).toEqual([0, 1, 2, 3].flatMap((k) => Array(16).fill(k)));
  });

  it("streams a large lazy tensor in bounded chunks", async () => {
    const numel = (9 << 20) / 4 + 3; // just over 9 MiB of float32
    const data = new Float32Array(numel).map((_, i) => i);
    const { tensors } = await readBack(
      await writeToMemory([["big", memoryTensor("float32", [numel], data)]]),
    );
    const sink = recordingSink();
    await writeSafetensors(sink, tensors);
    const dataWrites = sink.writes.slice(1);
    expect(dataWrites.length).toBeGreaterThan(1);
    expect(Math.max(...dataWrites.map((w) => w.byteLength))).toBeLessThanOrEqual(8 << 20);
    const back = await readBack(sink.bytes());
    // Buffer.equals: a deep toEqual over millions of elements takes seconds.
    expect(Buffer.from(back.data.get("big")!).equals(Buffer.from(bytesOf(data)))).toBe(true);
  });

  it("reports progress up to the file's size", async () => {
    const calls: { bytesWritten: number; tensorsWritten: number; totalBytes: number }[] = [];
    const result = await writeSafetensors(
      createMemorySink(),
      [
        ["a", memoryTensor("float64", [3], new Float64Array(3))],
        ["b", memoryTensor("uint8", [5], new Uint8Array(5))],
      ],
      { onProgress: (p) => calls.push(p) },
    );
    expect(result.tensors).toBe(2);
    const last = calls.at(-1)!;
    expect(last).toMatchObject({
      bytesWritten: result.bytes,
      totalBytes: result.bytes,
      tensorsWritten: 2,
    });
    for (let i = 1; i < calls.length; i++) {
      expect(calls[i]!.bytesWritten).toBeGreaterThanOrEqual(calls[i - 1]!.bytesWritten);
    }
  });
});

describe("writeSafetensors: refusals", () => {
  const ok = () => memoryTensor("uint8", [2], new Uint8Array([1, 2]));

  async function refusal(
    entries: Parameters<typeof writeSafetensors>[1],
    options?: Parameters<typeof writeSafetensors>[2],
  ): Promise<LoadoutError & { sink: ReturnType<typeof recordingSink> }> {
    const sink = recordingSink();
    const error = await writeSafetensors(sink, entries, options).then(
      () => {
        throw new Error("expected a refusal");
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LoadoutError);
    // The sink is always aborted, never closed.
    expect(sink.aborted).toBe(true);
    expect(sink.closed).toBe(false);
    return Object.assign(error as LoadoutError, { sink });
  }

  it("refuses bad names and metadata before writing anything", async () => {
    const cases: [Parameters<typeof writeSafetensors>[1], object | undefined, string][] = [
      [
        [
          ["a", ok()],
          ["a", ok()],
        ],
        undefined,
        "DUPLICATE_TENSOR_NAME",
      ],
      [[["bad\ud800", ok()]], undefined, "INVALID_TENSOR_NAME"],
      [[["__metadata__", ok()]], undefined, "INVALID_TENSOR_NAME"],
      [[["a", ok()]], { metadata: { n: 1 } }, "INVALID_METADATA"],
      [[["a", ok()]], { metadata: { "k\udc00": "v" } }, "INVALID_METADATA"],
      [
        [["c", memoryTensor("complex128", [1], new Float64Array(2))]],
        undefined,
        "UNSUPPORTED_DTYPE",
      ],
      [[["f4", memoryTensor("float4_e2m1", [3], new Uint8Array(2))]], undefined, "MisalignedSlice"],
      [[["neg", memoryTensor("uint8", [-1], new Uint8Array(0))]], undefined, "BAD_SHAPE"],
      [[["frac", memoryTensor("uint8", [1.5], new Uint8Array(0))]], undefined, "BAD_SHAPE"],
    ];
    for (const [entries, options, code] of cases) {
      const error = await refusal(entries, options);
      expect(error.code).toBe(code);
      expect(error.sink.writes).toEqual([]);
    }
  });

  it("refuses a header over the 100,000,000-byte limit readers enforce", async () => {
    const error = await refusal([["a", ok()]], { metadata: { big: "x".repeat(100_000_000) } });
    expect(error.code).toBe("HeaderTooLarge");
  });

  it("refuses data that does not match shape × dtype, and aborts the sink", async () => {
    const short = memoryTensor("float32", [4], new Float32Array(3));
    expect((await refusal([["short", short]])).code).toBe("TENSOR_SIZE_MISMATCH");
    const long = memoryTensor("float32", [2], new Float32Array(3));
    const error = await refusal([["long", long]]);
    expect(error).toMatchObject({ code: "TENSOR_SIZE_MISMATCH", key: "long" });
    // Nothing past the header was written.
    expect(error.sink.writes.length).toBe(1);
    const wrongKind = memoryTensor("float32", [2], new Int32Array(2));
    expect((await refusal([["kind", wrongKind]])).code).toBe("BAD_TENSOR_DATA");
  });

  it("stops a chunked tensor that gives more than its size before the excess is written", async () => {
    const tensor: ChunkedTensorLike = {
      dtype: "uint8",
      shape: [4],
      read: () => Promise.reject(new Error("unused")),
      async *chunks() {
        yield new Uint8Array(3);
        yield new Uint8Array(3);
      },
    };
    const error = await refusal([["t", tensor]]);
    expect(error.code).toBe("TENSOR_SIZE_MISMATCH");
    expect(error.sink.writes.map((w) => w.byteLength).slice(1)).toEqual([3]);
  });

  it("aborts the sink when reading a tensor fails", async () => {
    const failing = {
      dtype: "uint8" as const,
      shape: [1],
      read: () => Promise.reject(new Error("disk gone")),
    };
    const sink = recordingSink();
    await expect(writeSafetensors(sink, [["t", failing]])).rejects.toThrow("disk gone");
    expect(sink.aborted).toBe(true);
    expect(sink.closed).toBe(false);
  });

  it("says where the problem is", async () => {
    const error = await refusal([
      ["x", ok()],
      ["x", ok()],
    ]);
    expect(error.key).toBe("x");
    expect(error.message).toContain("key 'x'");
  });
});
