import { describe, expect, it } from "vitest";
import { SafetensorsError, UnsupportedFormatError } from "../../src/errors.js";
import { openShardedSafetensors } from "../../src/formats/safetensors/sharded.js";
import type { FormatOptions } from "../../src/formats/types.js";
import { type ByteSource, MemorySource } from "../../src/io/byte-source.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import { entry, header, safetensorsFile } from "./build.js";
import { expected, expectTensorMatches, fixtureSource, values } from "./fixtures.js";

const INDEX = "sharded/model.safetensors.index.json";

/** A MemorySource that records whether it was closed. */
class TrackedSource extends MemorySource {
  wasClosed = false;
  override async close(): Promise<void> {
    this.wasClosed = true;
    await super.close();
  }
}

/** An in-memory folder of files, opened through openRelative; records every open. */
function folder(files: Record<string, Uint8Array>) {
  const opened: string[] = [];
  const sources: TrackedSource[] = [];
  const options: FormatOptions = {
    openRelative: async (name: string): Promise<ByteSource> => {
      opened.push(name);
      const bytes = files[name];
      if (bytes === undefined) throw new Error(`no such file ${name}`);
      const source = new TrackedSource(bytes, name);
      sources.push(source);
      return source;
    },
  };
  return { options, opened, sources };
}

const indexSource = (text: string | Uint8Array) =>
  new MemorySource(
    typeof text === "string" ? new TextEncoder().encode(text) : text,
    "model.safetensors.index.json",
  );

/** Two small shards: a.safetensors holds x and y, b.safetensors holds z. */
function twoShards() {
  return {
    "a.safetensors": safetensorsFile(
      header([
        ["x", entry("U8", [2], 0, 2)],
        ["y", entry("U8", [1], 2, 3)],
      ]),
      { data: new Uint8Array([1, 2, 3]) },
    ),
    "b.safetensors": safetensorsFile(
      `{"__metadata__":{"format":"pt","from":"b"},"z":${entry("I16", [1], 0, 2)}}`,
      { data: new Uint8Array([0xff, 0x7f]) },
    ),
  };
}

async function refusal(
  index: string | Uint8Array,
  files: Record<string, Uint8Array> = twoShards(),
) {
  const { options, sources } = folder(files);
  try {
    await openShardedSafetensors(indexSource(index), options);
  } catch (error) {
    // Whatever was opened before the failure is closed again.
    for (const source of sources) expect(source.wasClosed, source.name).toBe(true);
    return error as SafetensorsError;
  }
  throw new Error("index was accepted");
}

describe("openShardedSafetensors", () => {
  it("reads the generated sharded checkpoint: every tensor, in weight_map order", async () => {
    const want = expected[INDEX]!;
    const files: Record<string, Uint8Array> = {};
    for (const name of ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]) {
      const source = fixtureSource(`sharded/${name}`);
      files[name] = await source.read(0, source.size);
    }
    const shards = folder(files);
    const result = await openShardedSafetensors(fixtureSource(INDEX), shards.options);
    expect(result.format).toBe("safetensors-sharded");
    // Each distinct shard opened once, in order of first mention.
    expect(shards.opened).toEqual([
      "model-00002-of-00002.safetensors",
      "model-00001-of-00002.safetensors",
    ]);
    expect(result.ownedSources).toEqual(shards.sources);
    expect(result.metadata).toEqual(want.metadata);
    expect(result.details).toMatchObject({ shards: 2, tensors: 4 });
    const root = result.root as Map<string, Tensor>;
    expect([...root.keys()]).toEqual(Object.keys(want.tensors));
    for (const [key, tensor] of root) await expectTensorMatches(tensor, want.tensors[key]!);
  });

  it("merges metadata: shards first (first one wins), the index's own over them, as text", async () => {
    const { options } = folder(twoShards());
    const index = `{"metadata":{"total_size":5,"big":18446744073709551615,"ratio":0.5,"flag":true,"none":null,"nested":{"a":[1,"x",{"b":null}]},"from":"index"},"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}}`;
    const result = await openShardedSafetensors(indexSource(index), options);
    expect(result.metadata).toEqual({
      format: "pt",
      from: "index",
      total_size: "5",
      big: "18446744073709551615",
      ratio: JSON.stringify(0.5),
      flag: "true",
      none: "null",
      nested: JSON.stringify({ a: [1, "x", { b: null }] }),
    });
    const root = result.root as Map<string, Tensor>;
    expect(values(await root.get("z")!.read())).toEqual([32767]);
    expect(values(await root.get("x")!.read())).toEqual([1, 2]);
  });

  it("needs openRelative", async () => {
    const error = await openShardedSafetensors(indexSource('{"weight_map":{}}')).catch((e) => e);
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect(error.code).toBe("OpenRelativeRequired");
    expect(error.file).toBe("model.safetensors.index.json");
  });

  it("refuses shard names that could leave the folder, before opening anything", async () => {
    const names = [
      "/etc/passwd",
      "../a.safetensors",
      "x/../../a.safetensors",
      "..",
      "a\\b",
      "C:x",
      "c:\\x",
      "a\u0000b",
      "",
    ];
    for (const name of names) {
      const { options, opened } = folder(twoShards());
      const index = JSON.stringify({ weight_map: { x: "a.safetensors", evil: name } });
      const error = await openShardedSafetensors(indexSource(index), options).catch((e) => e);
      expect(error, name).toBeInstanceOf(SafetensorsError);
      expect(error.code, name).toBe("UnsafeShardName");
      expect(opened).toEqual([]);
    }
    // '..' inside a name is not a '..' segment.
    const { options } = folder({ "a..b.safetensors": twoShards()["a.safetensors"] });
    const ok = await openShardedSafetensors(
      indexSource(JSON.stringify({ weight_map: { x: "a..b.safetensors", y: "a..b.safetensors" } })),
      options,
    );
    expect((ok.root as Map<string, Tensor>).size).toBe(2);
  });

  it("TensorNotFound: the index lists a tensor its shard does not have", async () => {
    const error = await refusal(
      JSON.stringify({
        weight_map: {
          x: "a.safetensors",
          y: "a.safetensors",
          w: "b.safetensors",
          z: "b.safetensors",
        },
      }),
    );
    expect(error.code).toBe("TensorNotFound");
    expect(error.key).toBe("w");
    expect(error.file).toBe("b.safetensors");
    expect(error.what).toContain('"b.safetensors"');
  });

  it("UnlistedTensor: a shard holds a tensor the index does not list, or lists elsewhere", async () => {
    const missing = await refusal(
      JSON.stringify({ weight_map: { x: "a.safetensors", z: "b.safetensors" } }),
    );
    expect(missing.code).toBe("UnlistedTensor");
    expect(missing.key).toBe("y");
    expect(missing.file).toBe("a.safetensors");
    expect(missing.what).toContain("which the index does not list");
  });

  it("UnlistedTensor names the shard the index puts the tensor in", async () => {
    // z is in both b and c; the index says c, so b's copy is unlisted.
    const error = await refusal(
      `{"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"c.safetensors","_":"b.safetensors"}}`,
      {
        ...twoShards(),
        "c.safetensors": twoShards()["b.safetensors"],
        "b.safetensors": safetensorsFile(
          header([
            ["_", entry("U8", [0], 0, 0)],
            ["z", entry("I16", [1], 0, 2)],
          ]),
          { data: 2 },
        ),
      },
    );
    expect(error.code).toBe("UnlistedTensor");
    expect(error.key).toBe("z");
    expect(error.file).toBe("b.safetensors");
    expect(error.what).toContain('which the index puts in "c.safetensors"');
  });

  it("DuplicateTensorName: a tensor listed twice in the weight_map", async () => {
    const error = await refusal('{"weight_map":{"x":"a.safetensors","x":"b.safetensors"}}');
    expect(error.code).toBe("DuplicateTensorName");
    expect(error.key).toBe("x");
  });

  it("InvalidShardIndex: not JSON, no weight_map, or wrong types", async () => {
    const bad = [
      "",
      "{",
      "[]",
      '{"metadata":{}}',
      '{"weight_map":[]}',
      '{"weight_map":{"x":1}}',
      '{"weight_map":{},"metadata":"x"}',
      '{"weight_map":{},"metadata":{"a":1,"a":2}}',
      '{"weight_map":{}} trailing',
      new Uint8Array([0x7b, 0xff, 0x7d]),
    ];
    for (const text of bad) {
      const error = await refusal(text);
      expect(error, String(text)).toBeInstanceOf(SafetensorsError);
      expect(error.code, String(text)).toBe("InvalidShardIndex");
      expect(error.file).toBe("model.safetensors.index.json");
    }
  });

  it("passes on a shard's own header error and closes the shards already open", async () => {
    const files = { ...twoShards(), "b.safetensors": safetensorsFile("{}", { data: 3 }) };
    const error = await refusal(
      JSON.stringify({
        weight_map: { x: "a.safetensors", y: "a.safetensors", z: "b.safetensors" },
      }),
      files,
    );
    expect(error.code).toBe("MetadataIncompleteBuffer");
    expect(error.file).toBe("b.safetensors");
  });

  it("closes the shards already open when opening one fails", async () => {
    const error = await refusal(
      JSON.stringify({
        weight_map: { x: "a.safetensors", y: "a.safetensors", z: "missing.safetensors" },
      }),
      { "a.safetensors": twoShards()["a.safetensors"] },
    );
    expect(String(error)).toContain("no such file missing.safetensors");
  });

  it("opens an index with an empty weight_map to an empty checkpoint", async () => {
    const { options, opened } = folder({});
    const result = await openShardedSafetensors(indexSource('{"weight_map":{}}'), options);
    expect((result.root as Map<string, Tensor>).size).toBe(0);
    expect(opened).toEqual([]);
    expect(result.metadata).toEqual({});
  });

  it("refuses an index file larger than the limit without reading it", async () => {
    const source = new MemorySource(new Uint8Array(0), "huge.index.json");
    Object.defineProperty(source, "size", { value: 100_000_001 });
    const { options } = folder({});
    const error = await openShardedSafetensors(source, options).catch((e) => e);
    expect(error.code).toBe("ShardIndexTooLarge");
    expect(source.bytesRead).toBe(0);
  });
});
