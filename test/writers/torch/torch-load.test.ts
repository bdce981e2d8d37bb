import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readZipArchive } from "../../../src/formats/zip/zip.js";
import { MemorySource } from "../../../src/io/byte-source.js";
import { DTYPES } from "../../../src/tensors/dtype.js";
import { Tensor } from "../../../src/tensors/tensor.js";
import type { TensorLike } from "../../../src/tensors/tensor-like.js";
import {
  PyFloat,
  PyOrderedDict,
  pyFloat,
  pyOrderedDict,
  pyTuple,
  type WritableValue,
} from "../../../src/writers/torch/pickler.js";
import {
  isTensorLike,
  torchCanWrite,
  torchStrides,
} from "../../../src/writers/torch/tensor-pickling.js";
import { writeTorchCheckpoint } from "../../../src/writers/torch/torch-writer.js";
import {
  trainingCheckpointTree,
  writeTrainingCheckpoint,
} from "../../../src/writers/torch/training-checkpoint.js";
import {
  findTorchPython,
  randomBytes,
  recordingSink,
  runPythonJson,
  sampleTensor,
  sha256,
  tensorData,
} from "./helpers.js";
import { sampleCheckpoint } from "./samples.js";

/**
 * Files loadout writes, loaded by real PyTorch with weights_only=True (torch-load.py). Needs a
 * Python with torch (CI has none): without one this says so and checks nothing.
 */

type Described = null | { [tag: string]: unknown };

interface TorchView {
  tree: Described;
  tensors: {
    dtype: string;
    shape: number[];
    stride: number[];
    storageOffset: number;
    requiresGrad: boolean;
    sha256: string;
  }[];
  training?: {
    lrs: number[];
    stepsLoaded: Record<string, number>;
    stepsAfterOneStep: Record<string, number>;
    schedulerLastLr: number[];
    schedulerLastEpoch: number;
    schedulerTMax: number;
  };
}

/** What torch-load.py should print for `value`: every value tagged with the Python type it must load as. */
async function expectedView(value: WritableValue): Promise<TorchView> {
  const tensors: TorchView["tensors"] = [];
  const index = new Map<TensorLike, number>();
  async function describe(v: unknown): Promise<Described> {
    if (v === null) return null;
    if (typeof v === "boolean") return { bool: v };
    if (typeof v === "bigint") return { int: String(v) };
    if (typeof v === "number") {
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? { int: String(v) } : { float: v };
    }
    if (v instanceof PyFloat) return { float: v.value };
    if (typeof v === "string") return { str: v };
    if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString("hex") };
    if (isTensorLike(v)) {
      if (!index.has(v)) {
        index.set(v, tensors.length);
        tensors.push({
          dtype: v.dtype,
          shape: [...v.shape],
          stride: torchStrides(v.shape),
          storageOffset: 0,
          requiresGrad: false,
          sha256: sha256(await tensorData(v)),
        });
      }
      return { tensor: index.get(v) };
    }
    if (Array.isArray(v)) {
      const items = [];
      for (const item of v) items.push(await describe(item));
      return Object.isFrozen(v) ? { tuple: items } : { list: items };
    }
    if (v instanceof Set) {
      const items = [];
      for (const item of v) items.push(await describe(item));
      return { set: items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) };
    }
    const ordered = v instanceof PyOrderedDict;
    const entries = ordered
      ? [...v.items]
      : v instanceof Map
        ? [...v]
        : Object.entries(v as object);
    const dict = [];
    for (const [k, item] of entries) dict.push([await describe(k), await describe(item)]);
    return { dict, type: ordered ? "OrderedDict" : "dict" };
  }
  return { tree: await describe(value), tensors };
}

/** Python floats arrive as repr() text; compare them as numbers. */
function parseFloats(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(parseFloats);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === "float" && typeof item === "string") {
      out[key] = { inf: Infinity, "-inf": -Infinity, nan: Number.NaN }[item] ?? Number(item);
    } else out[key] = parseFloats(item);
  }
  return out;
}

/** Byte positions where two files differ, outside the serialization id (its digits and CRCs). */
async function differencesOutsideSerializationId(
  ours: Uint8Array,
  theirs: Uint8Array,
): Promise<number[]> {
  const archive = await readZipArchive(new MemorySource(ours));
  const entry = archive.entries.find((e) => e.name.endsWith("/.data/serialization_id"))!;
  const data = await archive.entrySource(entry).origin();
  const name = new TextEncoder().encode(entry.name);
  const central = Buffer.from(ours).lastIndexOf(Buffer.from(name)) - 46;
  const allowed = (i: number) =>
    (i >= data && i < data + 40) || // the id's digits
    (i >= data + 44 && i < data + 48) || // its data descriptor's CRC
    (i >= central + 16 && i < central + 20); // its central directory CRC
  const differences: number[] = [];
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    if (ours[i] !== theirs[i] && !allowed(i)) differences.push(i);
  }
  return differences;
}

const python = findTorchPython();
const dir = mkdtempSync(join(tmpdir(), "loadout-torch-load-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function writeFile(
  name: string,
  write: (sink: ReturnType<typeof recordingSink>) => Promise<unknown>,
) {
  const sink = recordingSink();
  await write(sink);
  const bytes = sink.bytes();
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

describe("PyTorch loads what loadout writes", () => {
  it("with weights_only=True, bit for bit, and re-saves it to the same bytes", async () => {
    if (!python) {
      console.warn(
        "No Python with torch (tried /tmp/tv/bin/python and python3): files written by loadout were NOT checked against real PyTorch.",
      );
      return;
    }
    const shared = sampleTensor("float32", [2, 3], 1);
    const lazyBytes = randomBytes(9 << 20, 2);
    const lazy = new Tensor({
      storage: { source: new MemorySource(lazyBytes, "lazy"), dtype: "int32", bigEndian: false },
      shape: [3, 3 << 18], // 9 MiB of int32: two chunks
    });
    const stateDict = pyOrderedDict([
      ...[...DTYPES.keys()]
        .filter(torchCanWrite)
        .map((dtype, i) => [dtype, sampleTensor(dtype, [2, 3], i + 10)] as const),
      ["scalar", sampleTensor("float64", [], 3)],
      ["empty", sampleTensor("float32", [0], 4)],
      ["empty3d", sampleTensor("bool", [2, 0, 3], 5)],
      ["shared", shared],
      ["shared again", shared],
      ["lazy", lazy],
    ]);
    const values = new Map<WritableValue, WritableValue>([
      ["ints", [0, 1, 255, 256, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1]],
      ["bigints", [2n ** 64n, -(2n ** 100n)]],
      ["floats", [1.5, -0, pyFloat(3), 0.1, Infinity, -Infinity, Number.NaN, 2 ** 53, 5e-324]],
      ["strings", ["", "abc", "h\u00e9llo \u{1F600}", "a\udc80b"]],
      ["bytes", [new Uint8Array([1, 2, 255]), new Uint8Array(0)]],
      ["tuple", pyTuple([1, "a", pyTuple([])])],
      ["set", new Set([1, 2])],
      ["nested", { a: { b: [null, true, false] } }],
      [7, "int key"],
      [pyTuple([1, 2]), "tuple key"],
      [2n ** 70n, "bigint key"],
    ]);
    const checkpoint = sampleCheckpoint();

    const files = [
      await writeFile("state_dict.pt", (sink) => writeTorchCheckpoint(sink, stateDict)),
      await writeFile("values.pt", (sink) => writeTorchCheckpoint(sink, values)),
      await writeFile("training.ckpt", (sink) => writeTrainingCheckpoint(sink, checkpoint)),
    ];
    const spec = [
      { path: files[0]!.path, resave: true },
      { path: files[1]!.path },
      { path: files[2]!.path, resave: true, training: true },
    ];
    const result = runPythonJson(python, new URL("torch-load.py", import.meta.url).pathname, [
      JSON.stringify(spec),
    ]) as { torch: string; files: Record<string, TorchView> };
    const loaded = (i: number) => parseFloats(result.files[files[i]!.path]) as TorchView;

    // Every value with its Python type, every tensor's dtype, shape, strides and bytes.
    expect(loaded(0)).toEqual(await expectedView(stateDict));
    expect(loaded(1)).toEqual(await expectedView(values));
    const training = loaded(2);
    expect({ tree: training.tree, tensors: training.tensors }).toEqual(
      await expectedView(trainingCheckpointTree(checkpoint)),
    );

    // Real optimizer and scheduler objects take the states.
    expect(training.training).toEqual({
      lrs: [0.0007938926261462366, 1],
      stepsLoaded: { "0": 6, "1": 6, "2": 6, "3": 2 },
      stepsAfterOneStep: { "0": 7, "1": 7, "2": 7, "3": 3 },
      schedulerLastLr: [0.0007938926261462366, 1],
      schedulerLastEpoch: 3,
      schedulerTMax: 10,
    });

    // torch.save of what torch loaded writes our bytes again: same pickle, same zip layout.
    for (const i of [0, 2]) {
      const theirs = readFileSync(`${files[i]!.path}.resaved`);
      expect(theirs.byteLength).toBe(files[i]!.bytes.byteLength);
      expect(await differencesOutsideSerializationId(files[i]!.bytes, theirs)).toEqual([]);
    }
  });
});
