import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  ArchiveError,
  FormatError,
  LimitExceededError,
  UnsafeCheckpointError,
  UnsupportedFormatError,
} from "../../src/errors.js";
import type { PyValue } from "../../src/formats/pickle/values.js";
import { openTorchZip } from "../../src/formats/torch/torch-zip.js";
import type { FormatOptions } from "../../src/formats/types.js";
import { MemorySource } from "../../src/io/byte-source.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import { buildZip, rejectionOf, type TestEntry, toBytes } from "../zip/helpers.js";
import {
  type ExpectedLeaf,
  expectLeaves,
  fixture,
  readJson,
  toPlain,
  valuesOf,
  withFile,
  zipEntries,
} from "./helpers.js";

/** What torch.load reads from the fixtures (fixtures/make-fixtures.py). */
const expected = readJson<{
  files: Record<string, { tensors: ExpectedLeaf[]; others: Record<string, unknown> }>;
}>(fixture("expected.json"));

const mixed = () => zipEntries(fixture("zip-mixed.pt"));

/** Opens a re-packed archive from memory. */
function openZip(entries: TestEntry[], options: FormatOptions = {}) {
  return openTorchZip(new MemorySource(buildZip(entries), "repacked.pt"), options);
}

const tensorAt = (root: PyValue, key: string) => (root as Map<PyValue, PyValue>).get(key) as Tensor;

describe("openTorchZip: reading", () => {
  it("reads every dtype, view, parameter and value of a torch 2.13 file as torch does", async () => {
    await withFile(fixture("zip-mixed.pt"), openTorchZip, async (opened) => {
      const want = expected.files["zip-mixed.pt"]!;
      expect(opened.format).toBe("torch-zip");
      await expectLeaves(opened.root, want.tensors);
      const root = opened.root as Map<PyValue, PyValue>;
      for (const [key, value] of Object.entries(want.others)) {
        expect(toPlain(root.get(key)!), key).toEqual(value);
      }
      expect(opened.details).toEqual({
        folder: "zip-mixed",
        byteOrder: "little",
        formatVersion: 1,
        storageAlignment: 64,
        version: 3,
        protocol: 2,
      });
      expect(opened.opaqueClasses.size).toBe(0);
    });
  });

  it("keeps shared storage shared: views of one tensor have one storage object", async () => {
    await withFile(fixture("zip-mixed.pt"), openTorchZip, async (opened) => {
      const base = tensorAt(opened.root, "base");
      for (const view of ["row", "column", "transposed"]) {
        expect(tensorAt(opened.root, view).storage, view).toBe(base.storage);
      }
    });
  });

  it("reads only the directory, the small records and data.pkl to open; tensors when read", async () => {
    const bytes = readFileSync(fixture("zip-mixed.pt"));
    const entries = await mixed();
    const storageBytes = entries
      .filter((entry) => entry.name.includes("/data/"))
      .reduce((sum, entry) => sum + entry.data.length, 0);
    const source = new MemorySource(new Uint8Array(bytes), "zip-mixed.pt");
    const opened = await openTorchZip(source);
    const atOpen = source.bytesRead;
    expect(atOpen).toBeLessThanOrEqual(bytes.length - storageBytes);
    const base = tensorAt(opened.root, "base");
    await base.read();
    // Its local header (30 bytes + name + padding) and its 48 bytes.
    expect(source.bytesRead - atOpen).toBeGreaterThanOrEqual(48);
    expect(source.bytesRead - atOpen).toBeLessThan(48 + 30 + 128);
  });

  it("accepts any folder name, and lists other files as lazy records", async () => {
    const entries = (await mixed()).map((entry) => ({
      ...entry,
      name: entry.name.replace(/^zip-mixed\//, "my model v2/"),
    }));
    entries.push(
      { name: "my model v2/anemoi-metadata/anemoi.json", data: toBytes('{"version": 1}') },
      { name: "my model v2/notes.txt", data: toBytes("hello") },
      { name: "my model v2/extra/", data: new Uint8Array(0) },
      { name: "elsewhere.txt", data: toBytes("outside the folder") },
    );
    const opened = await openZip(entries);
    expect(opened.details.folder).toBe("my model v2");
    const records = opened.records!;
    expect([...records.keys()].sort()).toEqual(["anemoi-metadata/anemoi.json", "notes.txt"]);
    const json = records.get("anemoi-metadata/anemoi.json")!;
    expect(new TextDecoder().decode(await json.read(0, json.size))).toBe('{"version": 1}');
    expect(await valuesOf(tensorAt(opened.root, "row"))).toEqual([4, 5, 6, 7]);
  });

  it("reads storages as big-endian when the byteorder record says so", async () => {
    const entries = (await mixed()).map((entry) =>
      entry.name.endsWith("/byteorder") ? { ...entry, data: toBytes("big") } : entry,
    );
    const opened = await openZip(entries);
    expect(opened.details.byteOrder).toBe("big");
    // base holds 0..11 little-endian; read as big-endian each float's bytes are reversed.
    const little = new DataView(new Float32Array(Array.from({ length: 12 }, (_, i) => i)).buffer);
    const swapped = Array.from({ length: 12 }, (_, i) => little.getFloat32(i * 4, false));
    expect(await valuesOf(tensorAt(opened.root, "base"))).toEqual(swapped);
    // Single bytes have no order.
    expect(await valuesOf(tensorAt(opened.root, "uint8"))).toEqual([0, 255]);
  });

  it("reads a storage entry longer than its elements need (torch reads its start)", async () => {
    const entries = (await mixed()).map((entry) =>
      entry.name === "zip-mixed/data/2"
        ? { ...entry, data: new Uint8Array([...entry.data, 1, 2, 3]) }
        : entry,
    );
    const opened = await openZip(entries);
    expect(await valuesOf(tensorAt(opened.root, "base"))).toEqual(
      Array.from({ length: 12 }, (_, i) => i),
    );
  });

  it("reads tensors torch rebuilt from numpy arrays", async () => {
    await withFile(fixture("zip-numpy.pt"), openTorchZip, async (opened) => {
      await expectLeaves(opened.root, expected.files["zip-numpy.pt"]!.tensors);
    });
  });
});

describe("openTorchZip: refusals", () => {
  const refusal = async (
    promise: Promise<unknown>,
    kind: new (...args: never[]) => Error,
    code: string,
  ) => {
    const error = await rejectionOf(promise);
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(code);
    return error;
  };

  it.each([
    ["zip-conj.pt", "TENSOR_METADATA", "conj"],
    ["zip-sparse.pt", "SPARSE_TENSOR", "sparse"],
    ["zip-quantized.pt", "QUANTIZED_STORAGE", "quantized"],
    ["zip-nested.pt", "NESTED_TENSOR", "nested"],
    ["zip-meta.pt", "META_TENSOR", "meta"],
    ["zip-complex32.pt", "UNSUPPORTED_DTYPE", "complex32"],
    ["zip-numpy-convert.pt", "DTYPE_CONVERSION", "float64"],
  ])("refuses %s, which torch wrote, as %s", async (name, code, named) => {
    const error = await refusal(
      withFile(fixture(name), openTorchZip, async () => undefined),
      UnsupportedFormatError,
      code,
    );
    expect(error.message).toContain(named);
    expect((error as UnsupportedFormatError).file).toBe(fixture(name));
  });

  it("refuses a re-zipped (compressed) file, naming the entry", async () => {
    const entries = (await mixed()).map((entry) => ({ ...entry, method: 8 as const }));
    const error = await refusal(openZip(entries), ArchiveError, "COMPRESSED_ENTRY");
    expect(error.message).toContain("zip-mixed/");
    expect(error.message).toContain("re-zipped");
  });

  it("refuses a data.pkl whose CRC-32 is wrong", async () => {
    const entries = (await mixed()).map((entry) =>
      entry.name.endsWith("/data.pkl") ? { ...entry, crc: 0x12345678 } : entry,
    );
    const error = await refusal(openZip(entries), ArchiveError, "CRC_MISMATCH");
    expect(error.message).toContain("zip-mixed/data.pkl");
  });

  it("refuses a pickle referring to a storage the archive lacks", async () => {
    const entries = (await mixed()).filter((entry) => entry.name !== "zip-mixed/data/2");
    const error = await refusal(openZip(entries), FormatError, "MISSING_STORAGE");
    expect(error.message).toContain("zip-mixed/data/2");
  });

  it("refuses a storage entry shorter than its elements", async () => {
    const entries = (await mixed()).map((entry) =>
      entry.name === "zip-mixed/data/2" ? { ...entry, data: entry.data.subarray(0, 47) } : entry,
    );
    const error = await refusal(openZip(entries), FormatError, "STORAGE_TOO_SMALL");
    expect(error.message).toContain("12 elements of float32 need 48");
  });

  it("refuses archives without exactly one <folder>/data.pkl", async () => {
    const entries = await mixed();
    await refusal(
      openZip(entries.filter((entry) => !entry.name.endsWith("data.pkl"))),
      FormatError,
      "NO_DATA_PKL",
    );
    await refusal(
      openZip(entries.map((entry) => ({ ...entry, name: `outer/${entry.name}` }))),
      FormatError,
      "NO_DATA_PKL",
    );
    const pickle = entries.find((entry) => entry.name.endsWith("data.pkl"))!;
    await refusal(
      openZip([...entries, { name: "other/data.pkl", data: pickle.data }]),
      FormatError,
      "AMBIGUOUS_DATA_PKL",
    );
  });

  it("refuses TorchScript archives", async () => {
    const entries = [...(await mixed()), { name: "zip-mixed/constants.pkl", data: toBytes("(t.") }];
    await refusal(openZip(entries), UnsupportedFormatError, "TORCHSCRIPT_ARCHIVE");
  });

  it("refuses a byteorder record that is neither little nor big, or is huge", async () => {
    const withByteOrder = async (data: Uint8Array) =>
      (await mixed()).map((entry) =>
        entry.name.endsWith("/byteorder") ? { ...entry, data } : entry,
      );
    await refusal(openZip(await withByteOrder(toBytes("middle"))), FormatError, "BAD_BYTEORDER");
    await refusal(openZip(await withByteOrder(new Uint8Array(5000))), FormatError, "BAD_RECORD");
  });
});

/** A pickle written out opcode by opcode: one byte per character. */
const pickleBytes = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

describe("openTorchZip: unpickler options", () => {
  /** An archive whose data.pkl calls mylib.make() (protocol 2: GLOBAL, EMPTY_TUPLE, REDUCE). */
  const calling = () => [
    { name: "m/data.pkl", data: pickleBytes("\x80\x02cmylib\nmake\n)R.") },
    { name: "m/version", data: toBytes("3\n") },
  ];

  it("refuses calls of globals off the allowlist, naming the file", async () => {
    const error = await rejectionOf(openZip(calling()));
    expect(error).toBeInstanceOf(UnsafeCheckpointError);
    expect(error.code).toBe("UNSAFE_CALL");
    expect((error as UnsafeCheckpointError).file).toBe("repacked.pt");
  });

  it("passes allowGlobals through: the call becomes an inert object", async () => {
    const opened = await openZip(calling(), { allowGlobals: ["mylib.make"] });
    expect([...opened.opaqueClasses]).toEqual(["mylib.make"]);
  });

  it("passes limits through", async () => {
    const error = await rejectionOf(
      openTorchZip(new MemorySource(readFileSync(fixture("zip-mixed.pt"))), {
        limits: { maxOperations: 10 },
      }),
    );
    expect(error).toBeInstanceOf(LimitExceededError);
  });

  it("passes strict through", async () => {
    // NEWOBJ of an unknown class: an opaque object, or refused in strict mode.
    const entries = [{ name: "m/data.pkl", data: pickleBytes("\x80\x02cmylib\nThing\n)\x81.") }];
    expect([...(await openZip(entries)).opaqueClasses]).toEqual(["mylib.Thing"]);
    const error = await rejectionOf(openZip(entries, { strict: true }));
    expect(error).toBeInstanceOf(UnsafeCheckpointError);
  });
});
