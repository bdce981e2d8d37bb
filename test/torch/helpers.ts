import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { PyGlobal, type PyValue } from "../../src/formats/pickle/values.js";
import { isTorchStorage, type TorchStorage } from "../../src/formats/torch/storage.js";
import type { OpenedFormat } from "../../src/formats/types.js";
import { readZipArchive } from "../../src/formats/zip/zip.js";
import { type ByteSource, MemorySource } from "../../src/io/byte-source.js";
import { FileSource } from "../../src/io/file-source.js";
import { dtypeInfo } from "../../src/tensors/dtype.js";
import { Tensor } from "../../src/tensors/tensor.js";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../..");
export const corpora = path.resolve(repoRoot, "../shared/corpora");
export const hasCorpora = existsSync(corpora);

export function fixture(name: string): string {
  return path.join(here, "fixtures", name);
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

/** A tensor or bare storage as expected-corpus.py / make-fixtures.py describe it (from torch). */
export interface ExpectedLeaf {
  path: string;
  kind: "tensor" | "parameter" | "storage";
  dtype: string;
  shape?: number[];
  strides?: number[];
  storageOffset?: number;
  requiresGrad?: boolean;
  numel: number;
  sum: number | string;
  first: (number | string)[];
  sharesStorageWith: string;
  rawHex?: string;
}

/** Opens a file with `open`, runs `use`, closes the file. */
export async function withFile<T>(
  file: string,
  open: (source: ByteSource) => Promise<OpenedFormat>,
  use: (opened: OpenedFormat, source: FileSource) => Promise<T>,
): Promise<T> {
  const source = await FileSource.open(file);
  try {
    return await use(await open(source), source);
  } finally {
    await source.close();
  }
}

type Leaf = Tensor | TorchStorage;

/** Every tensor and bare storage in a tree by path, in the order the Python walker lists them. */
export function leaves(root: PyValue): Map<string, Leaf> {
  const found = new Map<string, Leaf>();
  const stack: [string, PyValue][] = [["", root]];
  const join = (base: string, key: PyValue) => (base ? `${base}.${String(key)}` : String(key));
  while (stack.length > 0) {
    const [at, value] = stack.pop()!;
    if (value instanceof Tensor || isTorchStorage(value)) {
      found.set(at, value);
    } else if (value instanceof Map) {
      stack.push(...[...value].map(([k, v]) => [join(at, k), v] as [string, PyValue]).reverse());
    } else if (Array.isArray(value)) {
      stack.push(
        ...value.map((v: PyValue, i: number) => [join(at, i), v] as [string, PyValue]).reverse(),
      );
    }
  }
  return found;
}

/** A tensor's elements as float64 numbers, row-major (bool and integers converted exactly). */
export async function valuesOf(tensor: Tensor): Promise<number[]> {
  return [...((await tensor.read({ dtype: "float64" })) as Float64Array)];
}

/** A bare storage seen as a 1-d tensor. */
function storageTensor(storage: TorchStorage): Tensor {
  return new Tensor({
    storage,
    shape: [storage.source.size / (dtypeInfo(storage.dtype).bits / 8)],
  });
}

function asNumber(value: number | string): number {
  if (typeof value === "number") return value;
  if (value === "nan") return Number.NaN;
  if (value === "inf") return Number.POSITIVE_INFINITY;
  if (value === "-inf") return Number.NEGATIVE_INFINITY;
  return Number(value);
}

/** Checks one leaf against torch's description of it: kind, dtype, view, flags, values. */
export async function expectLeaf(actual: Leaf | undefined, expected: ExpectedLeaf): Promise<void> {
  const where = `${expected.path || "<root>"}`;
  expect(actual, where).toBeDefined();
  if (expected.kind === "storage") {
    expect(isTorchStorage(actual), where).toBe(true);
  } else {
    expect(actual, where).toBeInstanceOf(Tensor);
  }
  const tensor = actual instanceof Tensor ? actual : storageTensor(actual as TorchStorage);
  expect(tensor.dtype, where).toBe(expected.dtype);
  expect(tensor.numel, where).toBe(expected.numel);
  if (expected.kind !== "storage") {
    expect([...tensor.shape], where).toEqual(expected.shape);
    expect([...tensor.strides], where).toEqual(expected.strides);
    expect(tensor.storageOffset, where).toBe(expected.storageOffset);
    expect(tensor.requiresGrad, where).toBe(expected.requiresGrad);
    expect(tensor.isParameter, where).toBe(expected.kind === "parameter");
  }
  if (expected.rawHex !== undefined) {
    const bytes = (await tensor.read()) as Uint8Array;
    expect(Buffer.from(bytes).toString("hex"), where).toBe(expected.rawHex);
    return;
  }
  const values = await valuesOf(tensor);
  expect(values.slice(0, expected.first.length), where).toEqual(expected.first.map(asNumber));
  const want = asNumber(expected.sum);
  const sum = values.reduce((a, b) => a + b, 0);
  if (!Number.isFinite(want)) {
    expect(sum, where).toBe(want);
  } else {
    // torch sums in another order: equal to float64 rounding.
    expect(Math.abs(sum - want), where).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));
  }
}

/** Checks all leaves, including which share storage (same bytes source, as in torch). */
export async function expectLeaves(
  root: PyValue,
  expected: readonly ExpectedLeaf[],
): Promise<void> {
  const actual = leaves(root);
  expect([...actual.keys()].sort()).toEqual(expected.map((leaf) => leaf.path).sort());
  for (const leaf of expected) {
    await expectLeaf(actual.get(leaf.path), leaf);
    const shared = actual.get(leaf.sharesStorageWith)!;
    const own = actual.get(leaf.path)!;
    const sourceOf = (x: Leaf) => (x instanceof Tensor ? x.storage.source : x.source);
    if (leaf.sharesStorageWith !== leaf.path) {
      expect(sourceOf(own), `${leaf.path} shares ${leaf.sharesStorageWith}'s storage`).toBe(
        sourceOf(shared),
      );
    }
  }
}

/** A source that counts its reads (bytesRead counts bytes). */
export function countingReads<S extends ByteSource>(source: S): S & { reads: number } {
  const counted = source as S & { reads: number };
  counted.reads = 0;
  const read = source.read.bind(source);
  const readInto = source.readInto.bind(source);
  counted.read = async (offset, length) => {
    counted.reads++;
    return read(offset, length);
  };
  counted.readInto = async (offset, destination) => {
    counted.reads++;
    return readInto(offset, destination);
  };
  return counted;
}

/** A tree's non-tensor values as JSON-like data, as make-fixtures.py writes torch's. */
export function toPlain(value: PyValue): unknown {
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [String(k), toPlain(v)]));
  }
  if (Array.isArray(value)) return value.map((item: PyValue) => toPlain(item));
  if (value instanceof PyGlobal) return value.qualifiedName;
  if (
    typeof value === "object" &&
    value !== null &&
    "pyClass" in value &&
    value.pyClass === "torch.device"
  ) {
    const device = value as unknown as { type: string; index: number | null };
    return { type: device.type, index: device.index };
  }
  return value;
}

/** The entries of a zip written by torch, for tests that re-pack them altered. */
export async function zipEntries(file: string): Promise<{ name: string; data: Uint8Array }[]> {
  const source = new MemorySource(new Uint8Array(readFileSync(file)), file);
  const archive = await readZipArchive(source);
  return Promise.all(
    archive.entries.map(async (entry) => ({
      name: entry.name,
      data: await archive.readEntry(entry),
    })),
  );
}
