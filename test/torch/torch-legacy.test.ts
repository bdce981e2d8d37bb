import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FormatError, PickleError, UnsupportedFormatError } from "../../src/errors.js";
import { PyGlobal, type PyValue } from "../../src/formats/pickle/values.js";
import { isLegacyTar, isTorchLegacy } from "../../src/formats/torch/detect.js";
import { openTorchLegacy, refuseLegacyTar } from "../../src/formats/torch/torch-legacy.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { FileSource } from "../../src/io/file-source.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import { rejectionOf } from "../zip/helpers.js";
import {
  countingReads,
  type ExpectedLeaf,
  expectLeaves,
  fixture,
  readJson,
  toPlain,
  valuesOf,
  withFile,
} from "./helpers.js";
import {
  floats,
  type LegacySpec,
  legacyFile,
  MAGIC_PICKLE,
  modulePickle,
} from "./legacy-builder.js";

const expected = readJson<{
  files: Record<string, { tensors: ExpectedLeaf[]; others: Record<string, unknown> }>;
}>(fixture("expected.json"));

const open = (bytes: Uint8Array) => openTorchLegacy(new MemorySource(bytes, "legacy.pt"));
const tensorAt = (root: PyValue, key: string) => (root as Map<PyValue, PyValue>).get(key) as Tensor;

async function refusal(promise: Promise<unknown>, code: string) {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(FormatError);
  expect(error.code).toBe(code);
  return error;
}

describe("openTorchLegacy: files torch wrote", () => {
  it("reads every dtype, view and parameter as torch does", async () => {
    await withFile(fixture("legacy-mixed.pt"), openTorchLegacy, async (opened) => {
      const want = expected.files["legacy-mixed.pt"]!;
      expect(opened.format).toBe("torch-legacy");
      await expectLeaves(opened.root, want.tensors);
      const root = opened.root as Map<PyValue, PyValue>;
      for (const [key, value] of Object.entries(want.others)) {
        expect(toPlain(root.get(key)!), key).toEqual(value);
      }
      expect(opened.details).toEqual({
        protocolVersion: 1001,
        writerByteOrder: "little",
        storages: 16,
      });
    });
  });

  it("reads protocol 4 files, whose pickles are framed", async () => {
    await withFile(fixture("legacy-protocol4.pt"), openTorchLegacy, async (opened) => {
      await expectLeaves(opened.root, expected.files["legacy-protocol4.pt"]!.tensors);
    });
  });

  it("reads a pickle longer than the first window and batches storage headers", async () => {
    const source = countingReads(await FileSource.open(fixture("legacy-many.pt")));
    try {
      const opened = await openTorchLegacy(source);
      const atOpen = { reads: source.reads, bytes: source.bytesRead };
      const root = opened.root as Map<PyValue, PyValue>;
      expect(root.size).toBe(expected.files["legacy-many.pt"]!.others.count);
      // 1,201 storages: the pickles take a few reads, the headers two (the big storage splits them).
      expect(atOpen.reads).toBeLessThanOrEqual(8);
      // Most of the big storage's 280,000 bytes are not read to open: the pickles' windows run
      // at most 64 KiB past their end.
      expect(atOpen.bytes).toBeLessThan(source.size - 280_000 + (64 << 10));
      for (const i of [0, 1, 599, 600, 1199]) {
        expect(await valuesOf(tensorAt(root, `t${i}`)), `t${i}`).toEqual([i, 0 - i]);
      }
      await expectLeaves(
        new Map([["big", root.get("big")!]]),
        expected.files["legacy-many.pt"]!.tensors,
      );
    } finally {
      await source.close();
    }
  });

  it("refuses a file cut short, in its storages or in its pickle", async () => {
    const bytes = new Uint8Array(readFileSync(fixture("legacy-mixed.pt")));
    await refusal(open(bytes.subarray(0, bytes.length - 1)), "STORAGE_OUT_OF_FILE");
    const error = await rejectionOf(open(bytes.subarray(0, 500)));
    expect(error).toBeInstanceOf(PickleError);
    expect(error.code).toBe("TRUNCATED");
  });
});

describe("openTorchLegacy: layout", () => {
  const spec = (): LegacySpec => ({
    tensors: [
      { name: "a", key: "10", numel: 4, offset: 0, size: 2 },
      { name: "b", key: "10", numel: 4, offset: 2, size: 2 },
      { name: "c", key: "20", numel: 1, offset: 0, size: 1 },
    ],
    keys: ["10", "20"],
    data: { "10": floats(1, 2, 3, 4), "20": floats(9) },
  });

  it("lays storages out in key order after the pickles, sharing roots", async () => {
    const opened = await open(legacyFile(spec()));
    expect(await valuesOf(tensorAt(opened.root, "a"))).toEqual([1, 2]);
    expect(await valuesOf(tensorAt(opened.root, "b"))).toEqual([3, 4]);
    expect(await valuesOf(tensorAt(opened.root, "c"))).toEqual([9]);
    expect(tensorAt(opened.root, "a").storage).toBe(tensorAt(opened.root, "b").storage);
    // Legacy files are little-endian whatever the machine that wrote them (torch converts).
    expect(tensorAt(opened.root, "a").storage.bigEndian).toBe(false);
  });

  it("reads torch 0.3 storage views as slices of their root storage", async () => {
    const file = legacyFile({
      tensors: [
        {
          name: "v",
          key: "10",
          numel: 4,
          view: { key: "11", offset: 1, size: 2 },
          offset: 0,
          size: 2,
        },
        {
          name: "w",
          key: "10",
          numel: 4,
          view: { key: "11", offset: 1, size: 2 },
          offset: 1,
          size: 1,
        },
      ],
      keys: ["10"],
      data: { "10": floats(1, 2, 3, 4) },
    });
    const opened = await open(file);
    expect(await valuesOf(tensorAt(opened.root, "v"))).toEqual([2, 3]);
    expect(await valuesOf(tensorAt(opened.root, "w"))).toEqual([3]);
    expect(tensorAt(opened.root, "v").storage).toBe(tensorAt(opened.root, "w").storage);
    const outside = legacyFile({
      tensors: [
        {
          name: "v",
          key: "10",
          numel: 4,
          view: { key: "11", offset: 3, size: 2 },
          offset: 0,
          size: 1,
        },
      ],
      keys: ["10"],
      data: { "10": floats(1, 2, 3, 4) },
    });
    await refusal(open(outside), "BAD_STORAGE_VIEW");
  });

  it("returns the class of a 'module' persistent id, inert", async () => {
    const opened = await open(
      legacyFile({ tensors: [], keys: [], data: {}, mainPickle: modulePickle() }),
    );
    expect(opened.root).toBeInstanceOf(PyGlobal);
    expect((opened.root as PyGlobal).qualifiedName).toBe("mylib.Net");
  });

  it("refuses storages missing from, unknown to or repeated in the key list", async () => {
    await refusal(open(legacyFile({ ...spec(), keys: ["10"] })), "MISSING_STORAGE");
    await refusal(open(legacyFile({ ...spec(), keys: ["10", "20", "30"] })), "UNKNOWN_STORAGE_KEY");
    await refusal(
      open(legacyFile({ ...spec(), keys: ["10", "20", "10"] })),
      "DUPLICATE_STORAGE_KEY",
    );
  });

  it("checks each storage's count, accepting big-endian counts only from big-endian writers", async () => {
    const error = await refusal(
      open(legacyFile({ ...spec(), counts: { "10": 5n } })),
      "STORAGE_SIZE_MISMATCH",
    );
    expect(error.message).toContain("'10'");
    await refusal(open(legacyFile({ ...spec(), bigEndianCounts: true })), "STORAGE_SIZE_MISMATCH");
    const fromBigEndian = await open(
      legacyFile({ ...spec(), bigEndianCounts: true, littleEndian: false }),
    );
    expect(fromBigEndian.details.writerByteOrder).toBe("big");
    expect(await valuesOf(tensorAt(fromBigEndian.root, "b"))).toEqual([3, 4]);
  });

  it("checks the whole layout against the file size before reading", async () => {
    const file = legacyFile({ ...spec(), data: { "10": floats(1, 2, 3, 4) } });
    // Storage "20" lost its 4 bytes (and its count): the layout runs past the end.
    await refusal(open(file.subarray(0, file.length - 4)), "STORAGE_OUT_OF_FILE");
  });

  it("refuses a wrong magic number or protocol version", async () => {
    const magic = MAGIC_PICKLE.slice();
    magic[5] = 0x9d; // was 0x9c: another number
    await refusal(open(legacyFile({ ...spec(), magic })), "BAD_MAGIC");
    await refusal(open(legacyFile({ ...spec(), protocolVersion: 1000 })), "BAD_PROTOCOL_VERSION");
  });
});

describe("recognising legacy files", () => {
  it("knows the magic number in every protocol Python writes it", () => {
    // Python: pickle.dumps(0x1950a86a20f9469cfc6c, protocol=p).
    const text = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
    expect(isTorchLegacy(text("L119547037146038801333356L\n."))).toBe(true);
    expect(isTorchLegacy(MAGIC_PICKLE)).toBe(true);
    const framed = [0x80, 0x04, 0x95, 0x0d, 0, 0, 0, 0, 0, 0, 0, ...MAGIC_PICKLE.subarray(2)];
    expect(isTorchLegacy(Uint8Array.from(framed))).toBe(true);
    expect(isTorchLegacy(readFileSync(fixture("legacy-protocol4.pt")))).toBe(true);
    expect(isTorchLegacy(text("L119547037146038801333357L\n."))).toBe(false);
    expect(isTorchLegacy(Uint8Array.from([0x80, 0x02, 0x7d, 0x71, 0x00]))).toBe(false);
    expect(isTorchLegacy(readFileSync(fixture("zip-mixed.pt")))).toBe(false);
  });

  it("knows the pre-2017 tar layout and refuses it", () => {
    const tar = new Uint8Array(512);
    tar.set(Uint8Array.from("sys_info", (c) => c.charCodeAt(0)));
    expect(isLegacyTar(tar)).toBe(true);
    const ustar = new Uint8Array(512);
    ustar.set(
      Uint8Array.from("ustar", (c) => c.charCodeAt(0)),
      257,
    );
    expect(isLegacyTar(ustar)).toBe(true);
    expect(isLegacyTar(readFileSync(fixture("legacy-mixed.pt")))).toBe(false);
    let error: unknown;
    try {
      refuseLegacyTar(new MemorySource(tar, "old.tar"));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect((error as UnsupportedFormatError).code).toBe("LEGACY_TAR");
    expect((error as Error).message).toBe(
      "unsupported legacy tar format (torch < 0.1.10) [old.tar]. Load it and re-save it with torch 1.x.",
    );
  });
});
