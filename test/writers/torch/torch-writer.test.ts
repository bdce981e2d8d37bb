import { describe, expect, it } from "vitest";
import { WriteError } from "../../../src/errors.js";
import { readZipArchive } from "../../../src/formats/zip/zip.js";
import { MemorySource } from "../../../src/io/byte-source.js";
import { floatToBfloat16Bits } from "../../../src/tensors/convert.js";
import { DTYPES } from "../../../src/tensors/dtype.js";
import { Tensor } from "../../../src/tensors/tensor.js";
import type { TensorLike } from "../../../src/tensors/tensor-like.js";
import {
  pyFloat,
  pyOrderedDict,
  pyTuple,
  type WritableValue,
} from "../../../src/writers/torch/pickler.js";
import { torchCanWrite } from "../../../src/writers/torch/tensor-pickling.js";
import { writeTorchCheckpoint } from "../../../src/writers/torch/torch-writer.js";
import {
  memoryTensor,
  openBytes,
  randomBytes,
  recordingSink,
  sampleTensor,
  sha256,
  tensorData,
} from "./helpers.js";

/** Every dtype torch can hold: all of loadout's but the 6-bit floats and unpacked 4-bit float. */
const TORCH_DTYPES = [...DTYPES.keys()].filter(torchCanWrite);

async function write(value: WritableValue, options = {}) {
  const sink = recordingSink();
  const result = await writeTorchCheckpoint(sink, value, options);
  expect(sink.closed).toBe(true);
  return { bytes: sink.bytes(), result, sink };
}

describe("writeTorchCheckpoint round trips through loadout's reader", () => {
  it("keeps every dtype's bytes exactly", async () => {
    const tensors = new Map<string, TensorLike>();
    TORCH_DTYPES.forEach((dtype, i) => {
      tensors.set(dtype, sampleTensor(dtype, [3, 5], i + 1));
    });
    const { bytes, result } = await write(pyOrderedDict(tensors));
    expect(result).toEqual({ bytes: bytes.byteLength, storages: TORCH_DTYPES.length });
    const checkpoint = await openBytes(bytes);
    expect(checkpoint.format).toBe("torch-zip");
    const root = checkpoint.root as Map<string, Tensor>;
    expect([...root.keys()]).toEqual(TORCH_DTYPES);
    for (const [dtype, original] of tensors) {
      const back = root.get(dtype)!;
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual([3, 5]);
      expect(sha256(await tensorData(back))).toBe(sha256(await tensorData(original)));
    }
  });

  it("writes 0-d and empty tensors with torch's strides", async () => {
    const value = {
      scalar: sampleTensor("float64", [], 7),
      empty: sampleTensor("float32", [0], 0),
      empty2d: sampleTensor("int64", [2, 0, 3], 0),
    };
    const checkpoint = await openBytes((await write(value)).bytes);
    const root = checkpoint.root as Map<string, Tensor>;
    expect(root.get("scalar")!.shape).toEqual([]);
    expect(await tensorData(root.get("scalar")!)).toEqual(await tensorData(value.scalar));
    expect(root.get("empty")!.shape).toEqual([0]);
    expect(root.get("empty2d")!.shape).toEqual([2, 0, 3]);
    // torch.zeros(2, 0, 3).stride() == (3, 3, 1)
    expect(root.get("empty2d")!.strides).toEqual([3, 3, 1]);
    expect((await root.get("empty2d")!.read()).length).toBe(0);
  });

  it("writes a tensor met twice once, and it loads as one tensor", async () => {
    const shared = sampleTensor("float32", [4], 3);
    const other = sampleTensor("float32", [4], 4);
    const { bytes, result } = await write({ a: shared, b: other, c: [shared, { d: shared }] });
    expect(result.storages).toBe(2);
    const archive = await readZipArchive(new MemorySource(bytes));
    expect(archive.entries.map((e) => e.name).filter((n) => n.includes("/data/"))).toEqual([
      "archive/data/0",
      "archive/data/1",
    ]);
    const root = (await openBytes(bytes)).root as Map<string, unknown>;
    const c = root.get("c") as unknown[];
    expect(c[0]).toBe(root.get("a"));
    expect((c[1] as Map<string, unknown>).get("d")).toBe(root.get("a"));
    expect(root.get("b")).not.toBe(root.get("a"));
  });

  it("keeps the plain values around the tensors", async () => {
    const value = new Map<WritableValue, WritableValue>([
      ["epoch", 3],
      ["lr", pyFloat(1)],
      ["betas", pyTuple([0.9, 0.999])],
      ["name", "run \u{1F680}"],
      ["blob", new Uint8Array([0, 255, 7])],
      ["empty", new Uint8Array(0)],
      ["big", 2n ** 80n],
      ["flags", [true, false, null]],
      [0, new Map([[1, "one"]])],
    ]);
    const root = (await openBytes((await write(value)).bytes)).root;
    expect(root).toEqual(
      new Map<unknown, unknown>([
        ["epoch", 3],
        ["lr", 1],
        ["betas", [0.9, 0.999]],
        ["name", "run \u{1F680}"],
        ["blob", new Uint8Array([0, 255, 7])],
        ["empty", new Uint8Array(0)],
        ["big", 2n ** 80n],
        ["flags", [true, false, null]],
        [0, new Map([[1, "one"]])],
      ]),
    );
  });

  it("writes torch's records in torch's order, every data start 64-byte aligned", async () => {
    const { bytes } = await write(
      { w: sampleTensor("float32", [2], 1), b: sampleTensor("int8", [3], 2) },
      { folder: "net" },
    );
    const archive = await readZipArchive(new MemorySource(bytes));
    expect(archive.entries.map((e) => e.name)).toEqual([
      "net/data.pkl",
      "net/.format_version",
      "net/.storage_alignment",
      "net/byteorder",
      "net/data/0",
      "net/data/1",
      "net/version",
      "net/.data/serialization_id",
    ]);
    const text = async (name: string) =>
      new TextDecoder().decode(await archive.readEntry(archive.find(`net/${name}`)!));
    expect(await text(".format_version")).toBe("1");
    expect(await text(".storage_alignment")).toBe("64");
    expect(await text("byteorder")).toBe("little");
    expect(await text("version")).toBe("3\n");
    expect(await text(".data/serialization_id")).toMatch(/^\d{40}$/);
    for (const entry of archive.entries) {
      const source = archive.entrySource(entry);
      expect((await source.origin()) % 64).toBe(0);
    }
  });

  it("is deterministic: the same content gives the same bytes", async () => {
    const value = () => ({ a: sampleTensor("bfloat16", [8], 5), n: 1 });
    expect(sha256((await write(value())).bytes)).toBe(sha256((await write(value())).bytes));
  });

  it("converts floating tensors, and only those, to the dtype asked", async () => {
    const floats = memoryTensor("float32", [3], new Float32Array([1, 1.00390625, -2.5]));
    const ints = sampleTensor("int32", [2], 9);
    const root = (await openBytes((await write({ floats, ints }, { dtype: "bfloat16" })).bytes))
      .root as Map<string, Tensor>;
    expect(root.get("floats")!.dtype).toBe("bfloat16");
    // 1.00390625 is halfway between two bfloat16 values: rounds to even (1.0).
    expect([...(await root.get("floats")!.read())]).toEqual(
      [1, 1.00390625, -2.5].map(floatToBfloat16Bits),
    );
    expect(root.get("ints")!.dtype).toBe("int32");
    expect(await tensorData(root.get("ints")!)).toEqual(await tensorData(ints));
  });
});

describe("writeTorchCheckpoint streams lazy tensors", () => {
  it("writes a checkpoint tensor chunk by chunk, never reading it whole", async () => {
    const numel = 5 << 20; // 20 MiB of float32: more than one 8 MiB chunk
    const bytes = randomBytes(numel * 4, 11);
    const tensor = new Tensor({
      storage: { source: new MemorySource(bytes, "big.bin"), dtype: "float32", bigEndian: false },
      shape: [numel],
    });
    tensor.read = () => {
      throw new Error("read() would hold the whole tensor in memory");
    };
    const sink = recordingSink();
    await writeTorchCheckpoint(sink, { big: tensor });
    expect(Math.max(...sink.writes.map((w) => w.byteLength))).toBeLessThanOrEqual(8 << 20);
    const back = (await openBytes(sink.bytes())).root as Map<string, Tensor>;
    const data = new Uint8Array(numel * 4);
    await back.get("big")!.readInto(new Float32Array(data.buffer));
    expect(sha256(data)).toBe(sha256(bytes));
  });
});

describe("writeTorchCheckpoint refuses, writing nothing", () => {
  async function refusal(value: WritableValue, options = {}) {
    const sink = recordingSink();
    const error = await writeTorchCheckpoint(sink, value, options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(sink.aborted).toBe(true);
    expect(sink.closed).toBe(false);
    return { error: error as WriteError, sink };
  }

  it("a dtype torch has no storage for", async () => {
    for (const dtype of ["float6_e2m3", "float6_e3m2", "float4_e2m1"] as const) {
      const { error, sink } = await refusal({
        layer: { w: memoryTensor(dtype, [2], new Uint8Array(2)) },
      });
      expect(error).toBeInstanceOf(WriteError);
      expect(error.code).toBe("UNSUPPORTED_DTYPE");
      expect(error.key).toBe("layer/w");
      expect(sink.writes).toEqual([]);
    }
  });

  it("a value the pickle cannot hold, naming where it is", async () => {
    const { error, sink } = await refusal({ a: [1, { b: () => 1 }] } as unknown as WritableValue);
    expect(error.code).toBe("UNPICKLABLE_VALUE");
    expect(error.key).toBe("a/1/b");
    expect(sink.writes).toEqual([]);
  });

  it("a bad shape, folder or target dtype", async () => {
    const badShape = memoryTensor("float32", [-1], new Float32Array(0));
    expect((await refusal({ t: badShape })).error.code).toBe("BAD_SHAPE");
    expect((await refusal({}, { folder: "a/b" })).error.code).toBe("INVALID_FOLDER");
    expect((await refusal({}, { folder: "" })).error.code).toBe("INVALID_FOLDER");
    expect((await refusal({}, { dtype: "int8" })).error.code).toBe("INVALID_DTYPE");
    const float8 = memoryTensor("float8_e4m3fn", [1], new Uint8Array(1));
    expect((await refusal({ f: float8 }, { dtype: "float32" })).error.code).toBe(
      "UNSUPPORTED_CONVERSION",
    );
  });

  it("a tensor whose data does not fit its shape (aborting the sink mid-file)", async () => {
    const short = memoryTensor("float32", [4], new Float32Array(3));
    const { error } = await refusal({ t: short });
    expect(error.code).toBe("TENSOR_SIZE_MISMATCH");
    expect(error.key).toBe("t");
  });
});
