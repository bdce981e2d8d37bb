/**
 * `loadout convert`, run in-process through the real CLI entry point on the PyTorch-made
 * fixtures. Expected values come from the fixtures' expected.json (what torch loaded), from
 * PyTorch-recorded constants, from byte offsets torch reported, or from arithmetic.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatPath } from "../../src/checkpoint/tree.js";
import { openCheckpointFile } from "../../src/node.js";
import { bytesOf } from "../../src/tensors/dtype.js";
import { buildSafetensors, type ExpectedTensor, expected, torchFile } from "./fixture-records.js";
import { runCli } from "./run-cli.js";

const ITEM_SIZE: Record<string, number> = { float32: 4, int64: 8, float16: 2, bfloat16: 2 };

/** A contiguous tensor's bytes, cut from the file where torch said its storage is. */
function storageBytes(file: string, tensor: ExpectedTensor): Uint8Array {
  const bytes = readFileSync(torchFile(file));
  const storage = expected[file]!.storages.find((s) => s.key === tensor.storage.key)!;
  const size = ITEM_SIZE[tensor.dtype]!;
  const start = storage.dataOffset + tensor.storageOffset * size;
  return new Uint8Array(bytes.subarray(start, start + tensor.numel * size));
}

/** torch's JSON numbers: "nan", "inf", "-inf" as strings. */
const fromJson = (value: number | string) =>
  value === "nan" ? Number.NaN : value === "inf" ? Infinity : value === "-inf" ? -Infinity : value;

interface ParsedTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/**
 * A safetensors file parsed by the spec's rules, independently of loadout's reader: an 8-byte
 * little-endian header length, a JSON header, data_offsets that tile the data section exactly.
 */
function parseSafetensors(bytes: Uint8Array): {
  metadata: Record<string, string> | undefined;
  tensors: Map<string, ParsedTensor>;
} {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  expect(length % 8).toBe(0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const data = bytes.subarray(8 + length);
  const tensors = new Map<string, ParsedTensor>();
  const ranges: [number, number][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets } = info as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    ranges.push(data_offsets);
    tensors.set(name, { dtype, shape, data: data.subarray(data_offsets[0], data_offsets[1]) });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [begin, stop] of ranges) {
    expect(begin).toBe(end);
    end = stop;
  }
  expect(end).toBe(data.byteLength);
  return { metadata: header.__metadata__, tensors };
}

const readSafetensors = async (path: string) =>
  parseSafetensors(new Uint8Array(await readFile(path)));

const u8 = (array: ArrayBufferView) =>
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** Runs the CLI in-process, capturing what it prints. */
const cli = (...args: string[]) => runCli(args);

/** Every tensor of a checkpoint by path: dtype, shape and the bytes read() gives. */
async function tensorsOf(path: string, stateDictOnly = false) {
  const checkpoint = await openCheckpointFile(path);
  try {
    const entries = stateDictOnly
      ? [...checkpoint.stateDict()!.tensors].map(([key, tensor]) => ({ key, tensor }))
      : checkpoint.tensors().map(({ path: p, tensor }) => ({ key: formatPath(p), tensor }));
    const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
    for (const { key, tensor } of entries) {
      out.set(key, {
        dtype: tensor.dtype,
        shape: [...tensor.shape],
        bytes: bytesOf(await tensor.read()),
      });
    }
    return out;
  } finally {
    await checkpoint.close();
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "loadout-convert-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("convert: round trips", () => {
  it("writes a torch state dict as safetensors holding exactly the bytes torch stored", async () => {
    const out = join(dir, "net.safetensors");
    const result = await cli("convert", torchFile("net_state_dict.pt"), out);
    expect(result.code).toBe(0);
    const { metadata, tensors } = await readSafetensors(out);
    expect(metadata).toEqual({ format: "pt" });
    const torch = expected["net_state_dict.pt"]!.tensors;
    expect([...tensors.keys()].sort()).toEqual(torch.map((t) => String(t.path[0])).sort());
    for (const t of torch) {
      const written = tensors.get(String(t.path[0]))!;
      expect(written.shape).toEqual(t.shape);
      expect(written.dtype).toBe(t.dtype === "float32" ? "F32" : "I64");
      expect(written.data).toEqual(storageBytes("net_state_dict.pt", t));
    }
    const size = (await readFile(out)).byteLength;
    expect(result.stdout).toMatch(/^converted .*net_state_dict\.pt \(torch-zip\): 13 tensors, /);
    expect(result.stdout).toContain(`written to ${out}`);
    expect(size).toBeGreaterThan(2416); // 2,416 data bytes (expected.json's storages) plus a header
  });

  it("keeps every tensor bit for bit through torch → safetensors → torch (dtype zoo: views, specials, 0-d, empty)", async () => {
    const middle = join(dir, "zoo.safetensors");
    const back = join(dir, "zoo.pt");
    expect((await cli("convert", torchFile("dtype_zoo.pt"), middle)).code).toBe(0);
    expect((await cli("convert", middle, back)).code).toBe(0);
    const original = await tensorsOf(torchFile("dtype_zoo.pt"));
    const final = await tensorsOf(back);
    expect([...final.keys()].sort()).toEqual([...original.keys()].sort());
    for (const [key, tensor] of original) expect(final.get(key), key).toEqual(tensor);
    // And against what torch itself loaded: the first elements of each tensor, in logical order.
    const checkpoint = await openCheckpointFile(back);
    try {
      const byKey = checkpoint.stateDict()!.tensors;
      for (const t of expected["dtype_zoo.pt"]!.tensors) {
        const values = await byKey.get(String(t.path[0]))!.read({ dtype: "float64" });
        const first = [...values.slice(0, t.first.length)] as number[];
        expect(first, String(t.path[0])).toEqual(t.first.map(fromJson));
      }
    } finally {
      await checkpoint.close();
    }
  });

  it("copies safetensors to safetensors unchanged, every dtype and the __metadata__ with it", async () => {
    const input = fileURLToPath(
      new URL("../fixtures/safetensors/basic.safetensors", import.meta.url),
    );
    const out = join(dir, "copy.safetensors");
    expect((await cli("convert", input, out)).code).toBe(0);
    const source = await readSafetensors(input);
    const copy = await readSafetensors(out);
    expect(copy.tensors).toEqual(source.tensors);
    const recorded = JSON.parse(
      readFileSync(new URL("../fixtures/safetensors/expected.json", import.meta.url), "utf8"),
    )["basic.safetensors"].metadata;
    expect(copy.metadata).toEqual(recorded);
  });

  it("writes the PyTorch zip's folder after the file name, as torch.save does", async () => {
    const out = join(dir, "weights.pth");
    expect((await cli("convert", torchFile("net_state_dict.pt"), out)).code).toBe(0);
    const bytes = new Uint8Array(await readFile(out));
    expect([...bytes.subarray(0, 4)]).toEqual([0x50, 0x4b, 0x03, 0x04]);
    // The first record's name, right after the 30-byte local header.
    const nameLength = bytes[26]! | (bytes[27]! << 8);
    expect(new TextDecoder().decode(bytes.subarray(30, 30 + nameLength))).toBe("weights/data.pkl");
    expect(await tensorsOf(out, true)).toEqual(
      await tensorsOf(torchFile("net_state_dict.pt"), true),
    );
  });
});

describe("convert --dtype", () => {
  // float32 inputs and what PyTorch 2.13 gives for them:
  //   t = torch.tensor(VALUES, dtype=torch.float32)
  //   [x & 0xffff for x in t.bfloat16().view(torch.int16).tolist()], same with .half()
  const VALUES = [
    0,
    -0,
    1,
    1 + 2 ** -8,
    1 + 3 * 2 ** -8,
    1 + 2 ** -8 + 2 ** -20,
    2.2,
    -2.5,
    0.1,
    65504,
    65519,
    65520,
    2049,
    2051,
    6e-8,
    1e-8,
    1e-40,
    1e-45,
    3.4028234663852886e38,
    Infinity,
    -Infinity,
    Number.NaN,
  ];
  const TORCH_BF16 = [
    0x0, 0x8000, 0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x400d, 0xc020, 0x3dcd, 0x4780, 0x4780, 0x4780,
    0x4500, 0x4500, 0x3381, 0x322c, 0x1, 0x0, 0x7f80, 0x7f80, 0xff80, 0xffff,
  ];
  const TORCH_F16 = [
    0x0, 0x8000, 0x3c00, 0x3c04, 0x3c0c, 0x3c04, 0x4066, 0xc100, 0x2e66, 0x7bff, 0x7bff, 0x7c00,
    0x6800, 0x6802, 0x1, 0x0, 0x0, 0x0, 0x7c00, 0x7c00, 0xfc00, 0x7e00,
  ];
  const isNaNBits = (bits: number, exponentMask: number) =>
    (bits & exponentMask) === exponentMask && (bits & ~exponentMask & 0x7fff) !== 0;

  async function convertValues(dtype: string): Promise<Map<string, ParsedTensor>> {
    const input = join(dir, "in.safetensors");
    await writeFile(
      input,
      buildSafetensors({
        w: { dtype: "F32", shape: [VALUES.length], data: u8(Float32Array.from(VALUES)) },
        steps: { dtype: "I32", shape: [3], data: u8(Int32Array.of(-7, 0, 2 ** 31 - 1)) },
        mask: { dtype: "BOOL", shape: [2], data: Uint8Array.of(1, 0) },
      }),
    );
    const out = join(dir, `${dtype}.safetensors`);
    expect((await cli("convert", input, out, "--dtype", dtype)).code).toBe(0);
    return (await readSafetensors(out)).tensors;
  }

  for (const [dtype, name, bits, exponent] of [
    ["bfloat16", "BF16", TORCH_BF16, 0x7f80],
    ["float16", "F16", TORCH_F16, 0x7c00],
  ] as const) {
    it(`rounds float32 to ${dtype} as PyTorch does and leaves ints and bools alone`, async () => {
      const tensors = await convertValues(dtype);
      const w = tensors.get("w")!;
      expect(w.dtype).toBe(name);
      const got = [...new Uint16Array(w.data.slice().buffer)];
      got.forEach((value, i) => {
        // PyTorch's vectorised NaN is 0xffff, its scalar one 0x7fc0: any NaN is right.
        if (Number.isNaN(VALUES[i]!)) expect(isNaNBits(value, exponent)).toBe(true);
        else expect(value, `element ${i} (${VALUES[i]})`).toBe(bits[i]);
      });
      expect(tensors.get("steps")).toEqual({
        dtype: "I32",
        shape: [3],
        data: u8(Int32Array.of(-7, 0, 2 ** 31 - 1)),
      });
      expect(tensors.get("mask")).toEqual({ dtype: "BOOL", shape: [2], data: Uint8Array.of(1, 0) });
    });
  }

  it("widens the dtype zoo's float16 and bfloat16 to float32 exactly, and rounds float64 to nearest", async () => {
    const out = join(dir, "zoo32.safetensors");
    expect(
      (
        await cli(
          "convert",
          torchFile("dtype_zoo.pt"),
          out,
          "--dtype",
          "float32",
          "--include",
          "float16",
          "--include",
          "bfloat16",
          "--include",
          "special_*",
          "--include",
          "float64",
          "--include",
          "int64",
        )
      ).code,
    ).toBe(0);
    const { tensors } = await readSafetensors(out);
    expect([...tensors.keys()].sort()).toEqual([
      "bfloat16",
      "float16",
      "float64",
      "int64",
      "special_bfloat16",
      "special_float16",
      "special_float32",
    ]);
    for (const t of expected["dtype_zoo.pt"]!.tensors) {
      const key = String(t.path[0]);
      const written = tensors.get(key);
      if (!written) continue;
      if (key === "int64") {
        expect(written.dtype).toBe("I64");
        expect([...new BigInt64Array(written.data.slice().buffer)].map(Number)).toEqual(t.first);
        continue;
      }
      expect(written.dtype).toBe("F32");
      const values = [...new Float32Array(written.data.slice().buffer)].slice(0, t.first.length);
      // float16/bfloat16 values are exact in float32; float64 rounds to the nearest float32.
      const want = t.first.map((v) => Math.fround(fromJson(v) as number));
      expect(values, key).toEqual(want);
    }
  });
});

describe("convert: choosing keys", () => {
  it("applies --include and --exclude to the file's keys, then --strip-prefix", async () => {
    const out = join(dir, "part.safetensors");
    const result = await cli(
      "convert",
      torchFile("lightning.ckpt"),
      out,
      "--include",
      "model.conv",
      "--include",
      "model.bn",
      "--exclude",
      "*.num_batches_tracked",
      "--strip-prefix",
      "model.",
    );
    expect(result.code).toBe(0);
    const { tensors } = await readSafetensors(out);
    expect([...tensors.keys()].sort()).toEqual([
      "bn.bias",
      "bn.running_mean",
      "bn.running_var",
      "bn.weight",
      "conv.bias",
      "conv.weight",
    ]);
    for (const t of expected["lightning.ckpt"]!.tensors) {
      const key = String(t.path[1]).replace(/^model\./, "");
      if (tensors.has(key))
        expect(tensors.get(key)!.data).toEqual(storageBytes("lightning.ckpt", t));
    }
  });

  it("strips repeated prefixes in order (anemoi's model.model.)", async () => {
    const out = join(dir, "net.safetensors");
    const result = await cli(
      "convert",
      torchFile("anemoi.ckpt"),
      out,
      "--exclude",
      "model.pre_processors",
      "--strip-prefix",
      "model.",
      "--strip-prefix",
      "model.",
    );
    expect(result.code).toBe(0);
    const { tensors } = await readSafetensors(out);
    const netKeys = expected["net_state_dict.pt"]!.tensors.map((t) => String(t.path[0]));
    expect([...tensors.keys()].sort()).toEqual(netKeys.sort());
  });

  it("refuses a stripped key that collides with another, naming both", async () => {
    const input = join(dir, "two.safetensors");
    const one = { dtype: "F32", shape: [1], data: u8(Float32Array.of(1)) };
    await writeFile(input, buildSafetensors({ "model.a": one, a: one, "model.b": one }));
    const out = join(dir, "out.safetensors");
    const result = await cli("convert", input, out, "--strip-prefix", "model.");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("keys 'model.a' and 'a' both become 'a'");
    expect(existsSync(out)).toBe(false);
  });

  it("refuses patterns and prefixes that match no key", async () => {
    const out = join(dir, "out.safetensors");
    const include = await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      out,
      "--include",
      "encoder",
    );
    expect(include.code).toBe(2);
    expect(include.stderr).toContain("--include 'encoder' matches no key");
    const strip = await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      out,
      "--strip-prefix",
      "model.",
    );
    expect(strip.code).toBe(2);
    expect(strip.stderr).toContain("--strip-prefix 'model.' starts no selected key");
    expect(existsSync(out)).toBe(false);
  });
});

describe("convert: sharded safetensors", () => {
  /** Hugging Face's shard names and index, every shard a valid file. */
  async function readSharded(folder: string) {
    const index = JSON.parse(await readFile(join(folder, "model.safetensors.index.json"), "utf8"));
    const tensors = new Map<string, ParsedTensor>();
    const files = [...new Set(Object.values(index.weight_map) as string[])].sort();
    for (const file of files) {
      const shard = await readSafetensors(join(folder, file));
      expect(shard.metadata).toEqual({ format: "pt" });
      for (const [name, t] of shard.tensors) {
        expect(index.weight_map[name]).toBe(file);
        tensors.set(name, t);
      }
    }
    return { index, files, tensors };
  }

  it("splits by --shard-size, names shards and index as Hugging Face does, removes stale ones", async () => {
    // Files an earlier run left: stale shards and a single file of the same base name.
    for (const stale of [
      "model-00001-of-00009.safetensors",
      "model-00009-of-00009.safetensors",
      "model.safetensors",
    ]) {
      await writeFile(join(dir, stale), "stale");
    }
    await writeFile(join(dir, "other-00001-of-00002.safetensors"), "unrelated");
    const result = await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      join(dir, "model.safetensors"),
      "--shard-size",
      "1KB",
    );
    expect(result.code).toBe(0);
    const { index, files, tensors } = await readSharded(dir);
    const count = files.length;
    expect(count).toBeGreaterThan(1);
    expect(files).toEqual(
      Array.from(
        { length: count },
        (_, i) =>
          `model-${String(i + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.safetensors`,
      ),
    );
    // total_size: the data bytes of all tensors, 2,416 by expected.json's storages.
    const storages = expected["net_state_dict.pt"]!.storages;
    expect(index.metadata).toEqual({ total_size: storages.reduce((n, s) => n + s.nbytes, 0) });
    for (const t of expected["net_state_dict.pt"]!.tensors) {
      expect(tensors.get(String(t.path[0]))!.data).toEqual(storageBytes("net_state_dict.pt", t));
    }
    // Each shard holds at most 1,000 data bytes (1KB = 10^3), as no tensor here is larger.
    for (const file of files) {
      const shard = await readSafetensors(join(dir, file));
      const dataBytes = [...shard.tensors.values()].reduce((n, t) => n + t.data.byteLength, 0);
      expect(dataBytes).toBeLessThanOrEqual(1000);
    }
    expect((await readdir(dir)).sort()).toEqual(
      [...files, "model.safetensors.index.json", "other-00001-of-00002.safetensors"].sort(),
    );
    expect(result.stdout).toContain("removed 3 stale file(s)");
  });

  it("takes the index path as OUT, and replaces shards with one file when everything fits", async () => {
    const indexPath = join(dir, "model.safetensors.index.json");
    expect(
      (await cli("convert", torchFile("net_state_dict.pt"), indexPath, "--shard-size", "1KB")).code,
    ).toBe(0);
    expect(existsSync(indexPath)).toBe(true);
    const again = await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      join(dir, "model.safetensors"),
      "--shard-size",
      "10KB",
    );
    expect(again.code).toBe(0);
    expect(await readdir(dir)).toEqual(["model.safetensors"]);
    const { tensors } = await readSafetensors(join(dir, "model.safetensors"));
    expect(tensors.size).toBe(13);
  });

  it("refuses --shard-size for torch output and an output name it cannot shard", async () => {
    const torch = await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      join(dir, "x.pt"),
      "--shard-size",
      "1KB",
    );
    expect(torch.code).toBe(2);
    expect(torch.stderr).toContain("--shard-size applies to safetensors output only");
    const named = await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      join(dir, "x.bin"),
      "--format",
      "safetensors",
      "--shard-size",
      "1KB",
    );
    expect(named.code).toBe(2);
    expect(named.stderr).toContain("sharded output needs a name such as model.safetensors");
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("convert: failures leave no output", () => {
  /** net_state_dict.pt with the local header of head.weight's storage (data/11) broken: it opens, and fails when that tensor is read. */
  async function brokenCheckpoint(): Promise<string> {
    const bytes = new Uint8Array(readFileSync(torchFile("net_state_dict.pt")));
    const record = (
      expected["net_state_dict.pt"] as unknown as {
        records: { name: string; dataOffset: number }[];
      }
    ).records.find((r) => r.name === "net_state_dict/data/11")!;
    // The local header is the last "PK\3\4" before the record's data.
    let at = record.dataOffset - 4;
    while (
      !(bytes[at] === 0x50 && bytes[at + 1] === 0x4b && bytes[at + 2] === 3 && bytes[at + 3] === 4)
    )
      at--;
    bytes.set([0, 0, 0, 0], at);
    const path = join(dir, "broken.pt");
    await writeFile(path, bytes);
    return path;
  }

  it("sharded: shards finished before the failure are removed too", async () => {
    // With 1KB shards head.weight is in the last of three, so two are complete when it fails.
    const good = join(dir, "good");
    await mkdir(good);
    await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      join(good, "model.safetensors"),
      "--shard-size",
      "1KB",
    );
    const index = JSON.parse(await readFile(join(good, "model.safetensors.index.json"), "utf8"));
    expect(index.weight_map["head.weight"]).toBe("model-00003-of-00003.safetensors");
    const out = join(dir, "out");
    await mkdir(out);
    const result = await cli(
      "convert",
      await brokenCheckpoint(),
      join(out, "model.safetensors"),
      "--shard-size",
      "1KB",
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("net_state_dict/data/11");
    expect(await readdir(out)).toEqual([]);
  });

  it("single files, safetensors or torch: nothing is left, and an existing file keeps its content", async () => {
    const broken = await brokenCheckpoint();
    for (const name of ["x.safetensors", "x.pt", "existing.safetensors"]) {
      const out = join(dir, name);
      if (name.startsWith("existing")) await writeFile(out, "previous content");
      const result = await cli("convert", broken, out);
      expect(result.code, name).toBe(2);
    }
    expect((await readdir(dir)).sort()).toEqual(["broken.pt", "existing.safetensors"]);
    expect(await readFile(join(dir, "existing.safetensors"), "utf8")).toBe("previous content");
  });
});

describe("convert to PyTorch", () => {
  it("keeps a whole training checkpoint: every tensor, counters and plain values", async () => {
    const out = join(dir, "copy.ckpt");
    expect((await cli("convert", torchFile("lightning.ckpt"), out)).code).toBe(0);
    const original = await tensorsOf(torchFile("lightning.ckpt"));
    const copy = await tensorsOf(out);
    expect(copy.size).toBe(expected["lightning.ckpt"]!.tensorCount);
    expect([...copy.keys()]).toEqual([...original.keys()]);
    for (const [key, tensor] of original) expect(copy.get(key), key).toEqual(tensor);
    const checkpoint = await openCheckpointFile(out);
    const source = await openCheckpointFile(torchFile("lightning.ckpt"));
    try {
      expect(await checkpoint.trainingCounters()).toEqual(await source.trainingCounters());
      expect([...(checkpoint.root as Map<string, unknown>).keys()]).toEqual([
        ...(source.root as Map<string, unknown>).keys(),
      ]);
      const groups = (tree: unknown) =>
        ((tree as Map<string, unknown>).get("optimizer_states") as Map<string, unknown>[])[0]!.get(
          "param_groups",
        );
      expect(groups(checkpoint.root)).toEqual(groups(source.root));
    } finally {
      await Promise.all([checkpoint.close(), source.close()]);
    }
  });

  it("converts only the model's floating tensors with --dtype; optimizer state keeps its dtype", async () => {
    const out = join(dir, "bf16.ckpt");
    expect(
      (await cli("convert", torchFile("lightning.ckpt"), out, "--dtype", "bfloat16")).code,
    ).toBe(0);
    const copy = await tensorsOf(out);
    expect(copy.get("state_dict/model.conv.weight")!.dtype).toBe("bfloat16");
    expect(copy.get("state_dict/model.bn.num_batches_tracked")!.dtype).toBe("int64");
    expect(copy.get("optimizer_states/0/state/0/exp_avg")!.dtype).toBe("float32");
  });

  it("writes only the state dict with --state-dict-only", async () => {
    const out = join(dir, "model.pt");
    expect(
      (
        await cli(
          "convert",
          torchFile("lightning.ckpt"),
          out,
          "--state-dict-only",
          "--strip-prefix",
          "model.",
        )
      ).code,
    ).toBe(0);
    const checkpoint = await openCheckpointFile(out);
    try {
      expect(checkpoint.stateDict()!.path).toEqual([]);
      expect([...(checkpoint.root as Map<string, unknown>).keys()]).toEqual(
        expected["net_state_dict.pt"]!.tensors.map((t) => String(t.path[0])),
      );
    } finally {
      await checkpoint.close();
    }
  });

  it("drops what torch could only load by running code, naming every path in a warning", async () => {
    const out = join(dir, "anemoi.ckpt");
    const result = await cli("convert", torchFile("anemoi.ckpt"), out);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^loadout: warning: left out 8 value\(s\)/);
    for (const path of [
      "hyper_parameters/config (omegaconf.dictconfig.DictConfig)",
      "hyper_parameters/data_indices (anemoi.models.data_indices.collection.IndexCollection)",
      "hyper_parameters/statistics/mean (numpy.ndarray)",
      "hyper_parameters/supporting_arrays/longitudes (numpy.ndarray)",
    ]) {
      expect(result.stderr).toContain(path);
    }
    expect(result.stdout).toContain("8 value(s) left out");
    const original = await tensorsOf(torchFile("anemoi.ckpt"));
    const copy = await tensorsOf(out);
    // Every tensor outside the dropped objects is kept, bit for bit.
    const kept = [...original.keys()].filter(
      (key) => !key.startsWith("hyper_parameters/data_indices"),
    );
    expect([...copy.keys()].sort()).toEqual(kept.sort());
    for (const key of kept) expect(copy.get(key), key).toEqual(original.get(key));
    const checkpoint = await openCheckpointFile(out, { strict: true });
    await checkpoint.close();
  });
});

describe("convert: output format", () => {
  it("goes by OUT's extension, and --format wins", async () => {
    const bin = join(dir, "model.bin");
    expect((await cli("convert", torchFile("net_state_dict.pt"), bin)).code).toBe(0);
    expect([...new Uint8Array(await readFile(bin)).subarray(0, 2)]).toEqual([0x50, 0x4b]);
    const forced = join(dir, "forced.bin");
    expect(
      (await cli("convert", torchFile("net_state_dict.pt"), forced, "--format", "safetensors"))
        .code,
    ).toBe(0);
    expect((await readSafetensors(forced)).tensors.size).toBe(13);
    const unknown = await cli(
      "convert",
      torchFile("net_state_dict.pt"),
      join(dir, "model.weights"),
    );
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("cannot tell the output format from its name");
  });

  it("refuses an output folder that does not exist, creating nothing", async () => {
    for (const name of ["x.safetensors", "x.pt", "model.safetensors.index.json"]) {
      const result = await cli(
        "convert",
        torchFile("net_state_dict.pt"),
        join(dir, "missing", name),
      );
      expect(result.code, name).toBe(2);
      expect(result.stderr).toContain("the output's folder does not exist");
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses a file with no model state dict", async () => {
    const pickle = fileURLToPath(new URL("../fixtures/pickle/ints_p2.pkl", import.meta.url));
    const result = await cli("convert", pickle, join(dir, "x.safetensors"));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("no model state dict found in the checkpoint");
  });
});

describe("docs/convert-merge-diff.md", () => {
  /** Each `$ loadout ...` line of the console examples, with the output shown under it. */
  function examples(): { args: string[]; output: string }[] {
    const text = readFileSync(new URL("../../docs/convert-merge-diff.md", import.meta.url), "utf8");
    const found: { args: string[]; output: string }[] = [];
    for (const block of text.matchAll(/```console\n([\s\S]*?)```/g)) {
      for (const part of block[1]!.split(/^\$ /m).slice(1)) {
        const [command, ...output] = part.split("\n");
        // Shell words: spaces separate, single quotes group.
        const words = [...command!.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
        expect(words[0]).toBe("loadout");
        found.push({ args: words.slice(1), output: output.join("\n").trim() });
      }
    }
    return found;
  }

  it("shows what the commands really print, run in order from the repository root", async () => {
    const cases = examples();
    expect(cases.length).toBeGreaterThan(15);
    const { symlink } = await import("node:fs/promises");
    await symlink(fileURLToPath(new URL("../", import.meta.url)), join(dir, "test"));
    await mkdir(join(dir, "out", "sharded"), { recursive: true }); // as the docs say to
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      for (const { args, output } of cases) {
        const result = await cli(...args);
        expect(`${result.stderr}${result.stdout}`.trim(), args.join(" ")).toBe(output);
      }
    } finally {
      process.chdir(cwd);
    }
  });
});
