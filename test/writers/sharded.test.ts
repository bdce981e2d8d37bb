import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { openShardedSafetensors } from "../../src/formats/safetensors/sharded.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { bytesOf } from "../../src/tensors/dtype.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import { formatShardIndex, pythonJsonString } from "../../src/writers/shard-index.js";
import { planShards, shardFileNames } from "../../src/writers/shard-plan.js";
import { writeShardedSafetensors } from "../../src/writers/sharded.js";
import { type ByteSink, createMemorySink } from "../../src/writers/sink.js";
import { headerOf, memoryTensor, readBack, recordingSink } from "./helpers.js";

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));

/** A folder in memory: an opener for the writer, and the files once each sink is closed. */
function memoryFolder() {
  const files = new Map<string, Uint8Array>();
  const opened: string[] = [];
  const open = (name: string): ByteSink => {
    opened.push(name);
    const sink = createMemorySink();
    return {
      write: (bytes) => sink.write(bytes),
      abort: () => sink.abort(),
      close: async () => {
        await sink.close();
        files.set(name, sink.bytes());
      },
    };
  };
  return { files, opened, open };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Sizes as plain numbers, for the planner. */
const sized = (sizes: number[]) =>
  sizes.map((byteLength, i) => ({ name: `layer_${i + 1}`, byteLength }));

describe("planShards", () => {
  it("matches huggingface_hub's split_state_dict_into_shards_factory", () => {
    // huggingface_hub's test_multiple_shards: sizes 6, 10, 30, 2, 2 with max_shard_size=10.
    expect(planShards(sized([6, 10, 30, 2, 2]), 10)).toEqual([
      ["layer_1"],
      ["layer_3"],
      ["layer_2"],
      ["layer_4", "layer_5"],
    ]);
    // test_single_shard: everything under the limit.
    expect(planShards(sized([6, 10, 30, 2, 2]), 100)).toEqual([
      ["layer_1", "layer_2", "layer_3", "layer_4", "layer_5"],
    ]);
    // The docstring's example: [6, 6, 2, 6, 2, 2] under 10 gives [6], [6+2], [6+2+2].
    expect(planShards(sized([6, 6, 2, 6, 2, 2]), 10)).toEqual([
      ["layer_1"],
      ["layer_2", "layer_3"],
      ["layer_4", "layer_5", "layer_6"],
    ]);
  });

  it("fills a shard up to exactly the limit, and plans one empty shard for no tensors", () => {
    expect(planShards(sized([4, 6, 1]), 10)).toEqual([["layer_1", "layer_2"], ["layer_3"]]);
    expect(planShards(sized([0, 0, 10, 0]), 10)).toEqual([
      ["layer_1", "layer_2", "layer_3", "layer_4"],
    ]);
    expect(planShards([], 10)).toEqual([[]]);
  });
});

describe("shard file names", () => {
  it("are Hugging Face's", () => {
    expect(shardFileNames("model", 1)).toEqual(["model.safetensors"]);
    expect(shardFileNames("model", 3)).toEqual([
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
    // Python's {:05d} widens past five digits.
    expect(shardFileNames("m", 123456).at(-1)).toBe("m-123456-of-123456.safetensors");
  });
});

describe("index JSON", () => {
  it("escapes strings as Python's json.dumps does (ensure_ascii)", () => {
    // Expected strings are Python 3.11's json.dumps output for the same text.
    expect(pythonJsonString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(pythonJsonString("\n\r\t\b\f\x01\x1f")).toBe('"\\n\\r\\t\\b\\f\\u0001\\u001f"');
    expect(pythonJsonString("\x7f~ ")).toBe('"\\u007f~ "');
    expect(pythonJsonString("é😀\u2028\uffff")).toBe('"\\u00e9\\ud83d\\ude00\\u2028\\uffff"');
  });

  it("lays the index out as json.dump(indent=2)", () => {
    // Python: json.dumps({"metadata": {"total_size": 5}, "weight_map": {}}, indent=2)
    expect(formatShardIndex({ totalSize: 5, metadata: [], weightMap: [] })).toBe(
      '{\n  "metadata": {\n    "total_size": 5\n  },\n  "weight_map": {}\n}',
    );
  });
});

describe("writeShardedSafetensors against huggingface_hub (reference fixtures)", () => {
  /** The fixture's state dict, in its insertion order, as lazy tensors read from the single-file fixture. */
  async function fixtureStateDict(): Promise<[string, Tensor][]> {
    const { tensors } = await readBack(fixture("single/model.safetensors"));
    const order = JSON.parse(text(fixture("sharded/input-order.txt"))) as string[];
    return order.map((name) => [name, tensors.get(name)!]);
  }

  it("writes save_torch_state_dict's shards and index byte for byte", async () => {
    const folder = memoryFolder();
    const result = await writeShardedSafetensors(folder.open, "model", await fixtureStateDict(), {
      maxShardBytes: "1KB",
      metadata: { producer: "loadout-fixture" },
    });
    const names = [1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`);
    expect(result.shards.map((s) => s.file)).toEqual(names);
    expect(result.indexFile).toBe("model.safetensors.index.json");
    expect(result.totalSize).toBe(3288);
    // Shards first, the index last.
    expect(folder.opened).toEqual([...names, "model.safetensors.index.json"]);
    for (const name of names) {
      expect(
        Buffer.from(folder.files.get(name)!).equals(Buffer.from(fixture(`sharded/${name}`))),
        name,
      ).toBe(true);
    }
    expect(text(folder.files.get("model.safetensors.index.json")!)).toBe(
      text(fixture("sharded/model.safetensors.index.json.expected")),
    );
  });

  it("writes a single model.safetensors and no index when everything fits", async () => {
    const folder = memoryFolder();
    const result = await writeShardedSafetensors(folder.open, "model", await fixtureStateDict(), {
      maxShardBytes: "10KB",
    });
    expect(result.indexFile).toBeUndefined();
    expect([...folder.files.keys()]).toEqual(["model.safetensors"]);
    expect(
      Buffer.from(folder.files.get("model.safetensors")!).equals(
        Buffer.from(fixture("single/model.safetensors")),
      ),
    ).toBe(true);
  });
});

describe("writeShardedSafetensors", () => {
  const f32 = (n: number, start: number) =>
    memoryTensor(
      "float32",
      [n],
      new Float32Array(n).map((_, i) => start + i),
    );

  it("round-trips through the sharded reader, every shard valid and within the limit", async () => {
    const entries: [string, ReturnType<typeof f32>][] = Array.from({ length: 12 }, (_, i) => [
      `layers.${i}.weight`,
      f32(10 + i * 7, i * 1000),
    ]);
    const folder = memoryFolder();
    const limit = 300;
    const result = await writeShardedSafetensors(folder.open, "model", entries, {
      maxShardBytes: limit,
      metadata: { step: "7" },
    });
    expect(result.shards.length).toBeGreaterThan(2);
    for (const shard of result.shards) {
      const back = await readBack(folder.files.get(shard.file)!);
      expect(back.metadata).toEqual({ format: "pt" });
      const dataBytes = [...back.data.values()].reduce((n, d) => n + d.byteLength, 0);
      // Over the limit only as a lone oversized tensor.
      expect(dataBytes <= limit || back.names.length === 1).toBe(true);
      expect(new Set(back.names)).toEqual(new Set(shard.tensors));
    }
    const index = JSON.parse(text(folder.files.get("model.safetensors.index.json")!));
    expect(index.metadata).toEqual({
      total_size: 4 * entries.reduce((n, [, t]) => n + t.shape[0]!, 0),
      step: "7",
    });
    // Every tensor once, mapped to the shard that holds it (oversized shards come early, as in
    // huggingface_hub, so the map is not in input order).
    expect(new Set(Object.keys(index.weight_map))).toEqual(new Set(entries.map(([name]) => name)));
    for (const shard of result.shards) {
      for (const name of shard.tensors) expect(index.weight_map[name]).toBe(shard.file);
    }

    const opened = await openShardedSafetensors(
      new MemorySource(
        folder.files.get("model.safetensors.index.json")!,
        "model.safetensors.index.json",
      ),
      { openRelative: async (name) => new MemorySource(folder.files.get(name)!, name) },
    );
    const root = opened.root as Map<string, Tensor>;
    expect([...root.keys()]).toEqual(Object.keys(index.weight_map));
    for (const [name, tensor] of entries) {
      expect(bytesOf(await root.get(name)!.read())).toEqual(bytesOf(await tensor.read()));
    }
  });

  it("gives a tensor larger than the limit a shard of its own", async () => {
    const folder = memoryFolder();
    const result = await writeShardedSafetensors(
      folder.open,
      "model",
      [
        ["a", f32(10, 0)],
        ["huge", f32(100, 0)],
        ["b", f32(10, 0)],
      ],
      { maxShardBytes: 100 },
    );
    expect(result.shards.map((s) => s.tensors)).toEqual([["huge"], ["a", "b"]]);
    expect(result.shards[0]!.bytes).toBe(folder.files.get(result.shards[0]!.file)!.byteLength);
  });

  it("plans sizes after dtype conversion", async () => {
    const entries: [string, ReturnType<typeof f32>][] = [
      ["a", f32(100, 0)],
      ["b", f32(100, 0)],
    ];
    const asF32 = await writeShardedSafetensors(memoryFolder().open, "m", entries, {
      maxShardBytes: 400,
    });
    expect(asF32.shards.length).toBe(2);
    const folder = memoryFolder();
    const asBf16 = await writeShardedSafetensors(folder.open, "m", entries, {
      maxShardBytes: 400,
      dtype: "bfloat16",
    });
    expect(asBf16.shards.length).toBe(1);
    expect((await readBack(folder.files.get("m.safetensors")!)).tensors.get("a")!.dtype).toBe(
      "bfloat16",
    );
  });

  it("puts the metadata in the file when there is one, after format", async () => {
    const folder = memoryFolder();
    await writeShardedSafetensors(folder.open, "model", [["a", f32(1, 0)]], {
      metadata: { producer: "x", format: "mlx" },
      fileMetadata: { format: "pt", other: "1" },
    });
    const { text: header } = headerOf(folder.files.get("model.safetensors")!);
    // As Python's dict.update: "format" keeps its place and takes the new value.
    expect(header).toContain('"__metadata__":{"format":"mlx","other":"1","producer":"x"}');
  });

  it("writes one empty file for no tensors", async () => {
    const folder = memoryFolder();
    const result = await writeShardedSafetensors(folder.open, "model", []);
    expect(result).toMatchObject({ indexFile: undefined, totalSize: 0 });
    expect((await readBack(folder.files.get("model.safetensors")!)).names).toEqual([]);
  });

  it("reports progress over all shards", async () => {
    const seen: {
      file: string;
      bytesWritten: number;
      totalBytes: number;
      tensorsWritten: number;
    }[] = [];
    const result = await writeShardedSafetensors(
      memoryFolder().open,
      "model",
      [
        ["a", f32(10, 0)],
        ["b", f32(10, 0)],
        ["c", f32(10, 0)],
      ],
      { maxShardBytes: 40, onProgress: (p) => seen.push(p) },
    );
    const total = result.shards.reduce((n, s) => n + s.bytes, 0);
    expect(new Set(seen.map((p) => p.file)).size).toBe(3);
    expect(seen.at(-1)).toMatchObject({
      bytesWritten: total,
      totalBytes: total,
      tensorsWritten: 3,
    });
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.bytesWritten).toBeGreaterThanOrEqual(seen[i - 1]!.bytesWritten);
    }
  });

  it("refuses a base name with a folder in it, and metadata that sets total_size", async () => {
    for (const base of ["", "a/b", "..", "a\\b"]) {
      await expect(writeShardedSafetensors(memoryFolder().open, base, [])).rejects.toMatchObject({
        code: "INVALID_FILE_NAME",
      });
    }
    await expect(
      writeShardedSafetensors(memoryFolder().open, "m", [], { metadata: { total_size: "1" } }),
    ).rejects.toMatchObject({ code: "INVALID_METADATA" });
    await expect(
      writeShardedSafetensors(memoryFolder().open, "m", [], { maxShardBytes: "5gb" }),
    ).rejects.toMatchObject({ code: "INVALID_SIZE" });
  });

  it("aborts the shard that fails and writes no index", async () => {
    const sinks = new Map<string, ReturnType<typeof recordingSink>>();
    const open = (name: string) => {
      const sink = recordingSink();
      sinks.set(name, sink);
      return sink;
    };
    const failing = {
      dtype: "float32" as const,
      shape: [10],
      read: () => Promise.reject(new Error("gone")),
    };
    await expect(
      writeShardedSafetensors(
        open,
        "m",
        [
          ["a", f32(10, 0)],
          ["b", failing],
          ["c", f32(10, 0)],
        ],
        { maxShardBytes: 40 },
      ),
    ).rejects.toThrow("gone");
    expect([...sinks.keys()]).toEqual([
      "m-00001-of-00003.safetensors",
      "m-00002-of-00003.safetensors",
    ]);
    expect(sinks.get("m-00001-of-00003.safetensors")).toMatchObject({
      closed: true,
      aborted: false,
    });
    expect(sinks.get("m-00002-of-00003.safetensors")).toMatchObject({
      closed: false,
      aborted: true,
    });
  });

  it("checks every tensor before opening any file", async () => {
    const folder = memoryFolder();
    await expect(
      writeShardedSafetensors(folder.open, "m", [
        ["a", f32(10, 0)],
        ["a", f32(10, 0)],
      ]),
    ).rejects.toMatchObject({ code: "DUPLICATE_TENSOR_NAME" });
    expect(folder.opened).toEqual([]);
  });
});
