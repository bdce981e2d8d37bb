import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { PickleLimits, ShortcutRun } from "../../src/formats/pickle/types.js";
import { unpickle } from "../../src/formats/pickle/unpickler.js";
import { isTuple, OpaqueObject, PyGlobal, type PyValue } from "../../src/formats/pickle/values.js";
import { resolveTorchGlobal } from "../../src/formats/torch/rebuild.js";
import { RebuildTensorShortcut } from "../../src/formats/torch/tensor-shortcut.js";
import { ZipStorageLoader } from "../../src/formats/torch/torch-zip.js";
import { readZipArchive, type ZipArchive } from "../../src/formats/zip/zip.js";
import { Tensor } from "../../src/tensors/tensor.js";
import { MiniPickler, type PyNode } from "../pickle/mini-pickler.js";
import { buildZip, memory, type TestEntry } from "../zip/helpers.js";
import { fixture } from "./helpers.js";

/**
 * The tensor shortcut must be invisible: for any pickle, unpickling with it gives the same tree
 * (same tensors, same shared storages) or the same error (code, message, offset) as running
 * every opcode. These tests run both on real torch files and on generated and mutated ones.
 */

/** Counts the calls the shortcut takes, so that no test passes by never taking one. */
class CountingShortcut extends RebuildTensorShortcut {
  taken = 0;
  override take(run: ShortcutRun): PyValue | undefined {
    const value = super.take(run);
    if (value !== undefined) this.taken++;
    return value;
  }
}

type Outcome = { value: unknown } | { error: { code: unknown; message: string; offset: unknown } };

function run(
  archive: ZipArchive,
  pickle: Uint8Array,
  shortcut: boolean,
  limits?: Partial<PickleLimits>,
): { outcome: Outcome; taken: number } {
  const loader = new ZipStorageLoader(archive, "archive", false, "test.pt");
  const counting = new CountingShortcut(loader);
  try {
    const { value } = unpickle(pickle, {
      file: "test.pt",
      resolveGlobal: resolveTorchGlobal,
      persistentLoad: loader,
      shortcut: shortcut ? counting : undefined,
      limits,
    });
    return { outcome: { value: plain(value) }, taken: counting.taken };
  } catch (error) {
    const { code, message, offset } = error as {
      code?: unknown;
      message: string;
      offset?: unknown;
    };
    return { outcome: { error: { code, message, offset } }, taken: counting.taken };
  }
}

/**
 * A value as plain data to compare: tensors by their fields, storages by the order they were
 * first met (so shared storage must be shared alike), tuples told from lists.
 */
function plain(root: PyValue): unknown {
  const storages: object[] = [];
  const convert = (value: PyValue): unknown => {
    if (value instanceof Tensor) {
      let storage = storages.indexOf(value.storage);
      if (storage < 0) storage = storages.push(value.storage) - 1;
      const { dtype, shape, strides, storageOffset, requiresGrad, isParameter } = value;
      const { byteLength, key, untyped } = value.storage as {
        byteLength?: number;
        key?: string;
        untyped?: boolean;
      };
      return {
        tensor: { dtype, shape, strides, storageOffset, requiresGrad, isParameter },
        storage: { storage, key, untyped, byteLength: byteLength ?? value.storage.source.size },
      };
    }
    if (value instanceof Map) return { dict: [...value].map(([k, v]) => [convert(k), convert(v)]) };
    if (Array.isArray(value)) return { [isTuple(value) ? "tuple" : "list"]: value.map(convert) };
    if (value instanceof PyGlobal) return { global: value.qualifiedName };
    if (value instanceof OpaqueObject)
      return { opaque: value.pyClass, args: convert([...value.args]) };
    if (typeof value === "bigint") return { int: String(value) };
    return value;
  };
  return convert(root);
}

async function bothWays(zip: Uint8Array, limits?: Partial<PickleLimits>) {
  const archive = await readZipArchive(memory(zip));
  const pickle = await archive.readEntry(archive.find("archive/data.pkl")!);
  const general = run(archive, pickle, false, limits);
  const fast = run(archive, pickle, true, limits);
  return { general: general.outcome, fast: fast.outcome, taken: fast.taken };
}

const rebuildV2: PyNode = { global: ["torch._utils", "_rebuild_tensor_v2"] };
const rebuildParameter: PyNode = { global: ["torch._utils", "_rebuild_parameter"] };
const orderedDict: PyNode = { global: ["collections", "OrderedDict"] };
const STORAGE_CLASSES = [
  "FloatStorage",
  "HalfStorage",
  "LongStorage",
  "BoolStorage",
  "ByteStorage",
];
const ITEM_SIZE: Record<string, number> = {
  FloatStorage: 4,
  HalfStorage: 2,
  LongStorage: 8,
  BoolStorage: 1,
  ByteStorage: 1,
};

interface TensorSpec {
  storageClass: string;
  key: number;
  numel: number;
  offset: number;
  shape: number[];
  strides: number[];
  requiresGrad: boolean;
  /** _rebuild_tensor_v2's seventh argument. */
  metadata: boolean;
  parameter: boolean;
  /** Use the previous tensor's shape tuple object again: the pickle then reads its memo entry. */
  shareShape: boolean;
}

/** A torch checkpoint as torch.save writes one: data.pkl (pickle protocol 2) and a storage entry per key. */
function checkpoint(
  specs: TensorSpec[],
  storageBytes: (key: number, needed: number) => number,
  // By default a Lightning-like state dict, one entry per tensor.
  root: (tensors: PyNode[]) => PyNode = (tensors) => ({
    dict: [
      [
        "state_dict",
        {
          reduce: [orderedDict, []],
          items: tensors.map((tensor, i): [PyNode, PyNode] => [`layer.${i}.weight`, tensor]),
        },
      ],
    ],
  }),
) {
  const storageClasses = new Map<string, PyNode>();
  const needed = new Map<number, number>();
  const tensors: PyNode[] = [];
  let previousShape: PyNode | undefined;
  for (const spec of specs) {
    let storageClass = storageClasses.get(spec.storageClass);
    if (!storageClass) {
      storageClass = { global: ["torch", spec.storageClass] };
      storageClasses.set(spec.storageClass, storageClass);
    }
    const bytes = spec.numel * ITEM_SIZE[spec.storageClass]!;
    needed.set(spec.key, Math.max(needed.get(spec.key) ?? 0, bytes));
    const pid: PyNode = {
      tuple: ["storage", storageClass, String(spec.key), "cpu", spec.numel],
    };
    const shape: PyNode = spec.shareShape && previousShape ? previousShape : { tuple: spec.shape };
    previousShape = shape;
    const args: PyNode[] = [
      { persid: pid },
      spec.offset,
      shape,
      { tuple: spec.strides },
      spec.requiresGrad,
      { reduce: [orderedDict, []] },
    ];
    if (spec.metadata) args.push({ dict: [["neg", true]] });
    let tensor: PyNode = { reduce: [rebuildV2, args] };
    if (spec.parameter)
      tensor = { reduce: [rebuildParameter, [tensor, true, { reduce: [orderedDict, []] }]] };
    tensors.push(tensor);
  }
  const pickle = new MiniPickler().dump(root(tensors));
  const entries: TestEntry[] = [
    { name: "archive/data.pkl", data: pickle },
    { name: "archive/byteorder", data: "little" },
  ];
  for (const [key, bytes] of needed) {
    const size = storageBytes(key, bytes);
    if (size >= 0) entries.push({ name: `archive/data/${key}`, data: new Uint8Array(size) });
  }
  entries.push({ name: "archive/version", data: "3\n" });
  return { pickle, entries };
}

/** Elements a view needs its storage to hold. */
function reachOf(shape: number[], strides: number[], offset: number): number {
  if (shape.includes(0)) return 0;
  return offset + shape.reduce((sum, size, d) => sum + (size - 1) * strides[d]!, 0) + 1;
}

/**
 * The specs as torch.save could have written them: strides that are not negative, a shared
 * shape only between tensors of one rank, and one storage key per storage, whose tensors agree
 * on its class and length. About one tensor in seven shares the previous one's storage.
 */
function asTorchWrites(specs: TensorSpec[]): TensorSpec[] {
  const written: TensorSpec[] = [];
  for (const [i, spec] of specs.entries()) {
    const previous = written[i - 1];
    const shapeFrom = spec.shareShape && previous ? previous : spec;
    let shareShape = shapeFrom !== spec;
    let shape = shapeFrom.shape;
    let strides = shapeFrom.strides.map((stride) => (stride > 2 ** 31 ? 1 : stride));
    // A view too large to write out becomes a 0-d tensor.
    if (reachOf(shape, strides, spec.offset) > 300_000) {
      shape = [];
      strides = [];
      shareShape = false;
    }
    const reach = reachOf(shape, strides, spec.offset);
    const shareStorage = spec.key === 0 && previous !== undefined;
    const storage = shareStorage ? previous : { ...spec, key: i };
    const numel = Math.max(storage.numel, reach);
    // Every tensor of a storage names its full length.
    if (shareStorage)
      for (const other of written) if (other.key === storage.key) other.numel = numel;
    written.push({
      ...spec,
      storageClass: storage.storageClass,
      key: storage.key,
      numel,
      shape,
      strides,
      shareShape,
      metadata: false,
    });
  }
  return written;
}

/**
 * How many tensor calls of a checkpoint written by `checkpoint` the shortcut takes. It is
 * offered each call but the first (which names the rebuild function with GLOBAL), and declines
 * a call that meets its storage class for the first time, that reads a memo entry (the shared
 * shape tuple or storage key of the tensor before it), or whose own memo entry is read by the
 * tensor after it. An empty shape tuple is never memoized, so sharing it costs nothing.
 */
function takenCalls(specs: TensorSpec[]): number {
  const classes = new Set<string>();
  const readsMemo = (spec: TensorSpec, i: number) =>
    i > 0 && ((spec.shareShape && spec.shape.length > 0) || spec.key === specs[i - 1]!.key);
  let taken = 0;
  for (const [i, spec] of specs.entries()) {
    const newClass = !classes.has(spec.storageClass);
    classes.add(spec.storageClass);
    const next = specs[i + 1];
    if (i === 0 || newClass || readsMemo(spec, i)) continue;
    if (next && readsMemo(next, i + 1)) continue;
    taken++;
  }
  return taken;
}

/** Mostly views that fit their storage, so that most calls can be taken; some that do not. */
const tensorSpec: fc.Arbitrary<TensorSpec> = fc
  .record({
    // Mostly one class, as in a real model, so most tensors meet theirs again.
    storageClass: fc.oneof(
      { arbitrary: fc.constant("FloatStorage"), weight: 4 },
      { arbitrary: fc.constantFrom(...STORAGE_CLASSES), weight: 1 },
    ),
    key: fc.nat(6),
    offset: fc.oneof(
      { arbitrary: fc.nat(20), weight: 5 },
      { arbitrary: fc.constant(300), weight: 1 },
    ),
    rank: fc.nat(5),
    sizes: fc.array(fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, 70000)), {
      minLength: 5,
      maxLength: 5,
    }),
    // 2^32 - 5 is written as BININT's bytes for -5: a negative stride the rebuild refuses.
    strides: fc.array(
      fc.oneof(
        { arbitrary: fc.nat(40), weight: 8 },
        { arbitrary: fc.constantFrom(65536, 2 ** 32 - 5), weight: 1 },
      ),
      {
        minLength: 5,
        maxLength: 5,
      },
    ),
    spare: fc.constantFrom(0, 0, 0, 0, 0, 7, 7, -1),
    requiresGrad: fc.boolean(),
    metadata: fc.nat(9).map((n) => n === 0),
    parameter: fc.nat(4).map((n) => n === 0),
    shareShape: fc.nat(4).map((n) => n === 0),
  })
  .map(({ rank, sizes, strides, offset, spare, ...rest }) => {
    const shape = sizes.slice(0, rank);
    const stride = strides.slice(0, rank);
    const reach = reachOf(shape, stride, offset);
    // A view too large to write out gets a small storage (VIEW_OUT_OF_STORAGE) instead.
    const numel = reach > 300_000 ? 5 : Math.max(reach + spare, 0);
    return { ...rest, offset, shape, strides: stride, numel };
  });

/** `count` float32 8 × 8 tensors, each with its own storage, as in a plain state dict. */
function plainSpecs(count: number): TensorSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    storageClass: "FloatStorage",
    key: i,
    numel: 64,
    offset: 0,
    shape: [8, 8],
    strides: [8, 1],
    requiresGrad: i % 2 === 0,
    metadata: false,
    parameter: false,
    shareShape: false,
  }));
}

describe("the tensor shortcut", () => {
  it("takes every tensor call after the first of a plain state dict, with the same result", async () => {
    const specs = plainSpecs(300);
    const { entries } = checkpoint(specs, (_key, bytes) => bytes);
    const { general, fast, taken } = await bothWays(buildZip(entries));
    expect(fast).toEqual(general);
    expect("value" in general).toBe(true);
    // The first call names the rebuild function with GLOBAL; the rest read it from the memo.
    expect(taken).toBe(specs.length - 1);
  });

  it("finds storages under keys that are not str(n) of a small number, with or without it", async () => {
    // torch writes "0", "1", ...; the shortcut reads those as numbers, and anything else (a
    // leading zero, a letter, ten digits, a number past the archive's entry count) as text.
    const keys = ["0", "007", "x1", "1234567890", "500", "7"];
    const floatStorage: PyNode = { global: ["torch", "FloatStorage"] };
    const tensors = keys.map(
      (key): PyNode => ({
        reduce: [
          rebuildV2,
          [
            { persid: { tuple: ["storage", floatStorage, key, "cpu", 2] } },
            0,
            { tuple: [2] },
            { tuple: [1] },
            false,
            { reduce: [orderedDict, []] },
          ],
        ],
      }),
    );
    const pickle = new MiniPickler().dump({
      dict: keys.map((_key, i): [PyNode, PyNode] => [`t${i}`, tensors[i]!]),
    });
    const entries: TestEntry[] = [
      { name: "archive/data.pkl", data: pickle },
      { name: "archive/byteorder", data: "little" },
      // Each storage holds its position in `keys`, then that plus a half.
      ...keys.map((key, i) => ({
        name: `archive/data/${key}`,
        data: new Uint8Array(new Float32Array([i, i + 0.5]).buffer),
      })),
    ];
    const zip = buildZip(entries);
    const { general, fast, taken } = await bothWays(zip);
    expect(fast).toEqual(general);
    expect(taken).toBe(keys.length - 1);

    const archive = await readZipArchive(memory(zip));
    const loader = new ZipStorageLoader(archive, "archive", false, "test.pt");
    const { value } = unpickle(await archive.readEntry(archive.find("archive/data.pkl")!), {
      resolveGlobal: resolveTorchGlobal,
      persistentLoad: loader,
      shortcut: new RebuildTensorShortcut(loader),
    });
    const read = [...(value as Map<string, Tensor>).values()];
    expect(read.map((tensor) => (tensor.storage as unknown as { key: string }).key)).toEqual(keys);
    for (const [i, tensor] of read.entries()) {
      expect([...((await tensor.read()) as Float32Array)]).toEqual([i, i + 0.5]);
    }
  });

  it("declines a tensor whose storage is compressed, which the unpickler then refuses", async () => {
    const specs = plainSpecs(3);
    const { entries } = checkpoint(specs, (_key, bytes) => bytes);
    for (const entry of entries) if (entry.name === "archive/data/2") entry.method = 8;
    const { general, fast, taken } = await bothWays(buildZip(entries));
    expect(fast).toEqual(general);
    expect(general).toMatchObject({ error: { code: "COMPRESSED_ENTRY" } });
    // The second tensor is taken; the third is declined and fails in the unpickler.
    expect(taken).toBe(1);
  });

  it("gives what the unpickler gives for generated checkpoints, mutated or not", async () => {
    let validCalls = 0;
    let validTaken = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(tensorSpec, { minLength: 3, maxLength: 16 }),
        fc.constantFrom("exact", "exact", "exact", "larger", "smaller", "missing", "compressed"),
        fc.oneof(
          { arbitrary: fc.constant([]), weight: 3 },
          {
            arbitrary: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }),
            weight: 2,
          },
        ),
        fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 6 },
          {
            arbitrary: fc.constantFrom<Partial<PickleLimits>>(
              { maxOperations: 150 },
              { maxStack: 12 },
              { maxMarkDepth: 3 },
              { maxContainerItems: 6 },
              { maxMemo: 40 },
              { maxStringBytes: 14 },
            ),
            weight: 3,
          },
        ),
        fc.boolean(),
        async (anySpecs, anySizing, anyMutations, anyLimits, hostile) => {
          // Half the runs are checkpoints torch could have written, which load; half go wrong.
          const specs = hostile ? anySpecs : asTorchWrites(anySpecs);
          const sizing = hostile ? anySizing : "exact";
          const mutations = hostile ? anyMutations : [];
          const limits = hostile ? anyLimits : undefined;
          const { pickle, entries } = checkpoint(specs, (key, bytes) => {
            if (sizing === "larger") return bytes + 16;
            if (sizing === "smaller" && key === specs[0]!.key) return Math.max(bytes - 1, 0);
            if (sizing === "missing" && key === specs[0]!.key) return -1;
            return bytes;
          });
          // The last tensor's storage deflated: refused, where the shortcut may be offered it.
          if (sizing === "compressed") {
            const name = `archive/data/${specs.at(-1)!.key}`;
            for (const entry of entries) if (entry.name === name) entry.method = 8;
          }
          // Byte changes past the PROTO header, in the pickle the zip then stores.
          const mutated = pickle.slice();
          for (const [at, byte] of mutations) mutated[2 + (at % (mutated.length - 2))] = byte;
          entries[0] = { name: "archive/data.pkl", data: mutated };
          const { general, fast, taken } = await bothWays(buildZip(entries), limits);
          expect(fast).toEqual(general);
          if (!hostile) {
            expect("value" in general).toBe(true);
            validCalls += specs.length;
            validTaken += taken;
            expect(taken).toBe(takenCalls(specs));
          }
        },
      ),
      { numRuns: 400 },
    );
    // Each valid run takes exactly the calls takenCalls counts; over 200 or so runs that is
    // about 0.4 of all calls (0.38 to 0.44 seen), so no run of this test passes by taking none.
    expect(validTaken).toBeGreaterThan(validCalls / 4);
  });

  it("fails where the unpickler fails, at every value of every limit", async () => {
    // Ranks above 3 are written MARK ... TUPLE, a container of their own.
    const spec = (shape: number[], key: number): TensorSpec => ({
      storageClass: "FloatStorage",
      key,
      numel: 64,
      offset: 0,
      shape,
      strides: shape.map(() => 1),
      requiresGrad: false,
      metadata: false,
      parameter: false,
      shareShape: false,
    });
    const shapes = [[], [2], [2, 2, 2], [2, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1]];
    // Nested in lists (a MARK each, for APPENDS): later tensors have more MARKs open than the
    // first, which the unpickler always runs itself.
    const { entries } = checkpoint(
      shapes.flatMap((shape, i) => [spec(shape, 2 * i), spec([...shape].reverse(), 2 * i + 1)]),
      (_key, bytes) => bytes,
      (tensors) => ({
        dict: [
          ["first", tensors[0]!],
          ["flat", { list: tensors.slice(1, 5) }],
          ["nested", { list: [{ list: tensors.slice(5, 8) }, { list: tensors.slice(8) }] }],
        ],
      }),
    );
    const zip = buildZip(entries);
    const sweeps: [keyof PickleLimits, number][] = [
      ["maxStack", 40],
      ["maxMarkDepth", 6],
      ["maxContainerItems", 12],
      ["maxOperations", 400],
      ["maxMemo", 120],
      ["maxStringBytes", 20],
    ];
    let taken = 0;
    for (const [limit, top] of sweeps) {
      for (let value = 0; value <= top; value++) {
        const both = await bothWays(zip, { [limit]: value });
        expect(both.fast, `${limit} = ${value}`).toEqual(both.general);
        taken += both.taken;
      }
    }
    expect(taken).toBeGreaterThan(100);
  });

  it("gives what the unpickler gives for every torch zip fixture", async () => {
    for (const name of [
      "zip-mixed.pt",
      "zip-nested.pt",
      "zip-meta.pt",
      "zip-conj.pt",
      "zip-numpy.pt",
    ]) {
      const archive = await readZipArchive(memory(readFileSync(fixture(name)), name));
      const pickleEntry = archive.entries.find((entry) => entry.name.endsWith("/data.pkl"))!;
      const folder = pickleEntry.name.slice(0, -"/data.pkl".length);
      const pickle = await archive.readEntry(pickleEntry);
      const outcome = (shortcut: boolean) => {
        const loader = new ZipStorageLoader(archive, folder, false, name);
        try {
          return plain(
            unpickle(pickle, {
              file: name,
              resolveGlobal: resolveTorchGlobal,
              persistentLoad: loader,
              shortcut: shortcut ? new RebuildTensorShortcut(loader) : undefined,
            }).value,
          );
        } catch (error) {
          return { error: (error as Error).message };
        }
      };
      expect(outcome(true), name).toEqual(outcome(false));
    }
  });
});
