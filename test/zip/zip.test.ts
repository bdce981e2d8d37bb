import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ArchiveError, LimitExceededError } from "../../src/errors.js";
import { crc32 } from "../../src/formats/zip/crc32.js";
import { readZipArchive } from "../../src/formats/zip/zip.js";
import type { ByteSource } from "../../src/io/byte-source.js";
import { FileSource } from "../../src/io/file-source.js";
import { buildZip, errorOf, memory, type TestEntry, toBytes } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const corpora = path.resolve(here, "../..", "../shared/corpora");
const hasCorpora = existsSync(corpora);
if (!hasCorpora) console.warn(`zip tests: ${corpora} is absent; corpus-based tests are skipped`);

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function open(entries: TestEntry[], options = {}) {
  return readZipArchive(memory(buildZip(entries, options)));
}

describe("crc32", () => {
  it("matches the standard check value and zlib's results", () => {
    // The CRC-32/ISO-HDLC check value for "123456789", and zlib.crc32 of these strings.
    expect(crc32(toBytes("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(toBytes("a"))).toBe(0xe8b7be43);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
  });

  it("continues a running checksum over chunks", () => {
    const all = toBytes("The quick brown fox jumps over the lazy dog");
    expect(crc32(all)).toBe(0x414fa339);
    expect(crc32(all.subarray(10), crc32(all.subarray(0, 10)))).toBe(0x414fa339);
  });
});

describe("readZipArchive: reading", () => {
  it("lists entries and reads them lazily, reading only the directory to open", async () => {
    const entries = [
      { name: "archive/data.pkl", data: "pickle bytes" },
      { name: "archive/data/0", data: new Uint8Array([1, 2, 3, 4]) },
    ];
    const bytes = buildZip(entries);
    const source = memory(bytes);
    const zip = await readZipArchive(source);
    expect(zip.entries.map((e) => e.name)).toEqual(["archive/data.pkl", "archive/data/0"]);
    // Directory: two 46-byte records plus their names; reads: the last 42 bytes, then the directory.
    const directorySize = 46 * 2 + "archive/data.pkl".length + "archive/data/0".length;
    expect(source.bytesRead).toBe(42 + directorySize);

    const entry = zip.find("archive/data/0")!;
    expect(entry).toMatchObject({ method: 0, uncompressedSize: 4, compressedSize: 4 });
    expect(entry.crc32).toBe(crc32(new Uint8Array([1, 2, 3, 4])));
    const slice = zip.entrySource(entry);
    expect(slice.size).toBe(4);
    expect(slice.name).toBe("test.zip:archive/data/0");
    // Nothing is read until the slice is used.
    expect(source.bytesRead).toBe(42 + directorySize);
    expect([...(await slice.read(1, 2))]).toEqual([2, 3]);
    // The data starts 64-byte aligned, as torch writes it.
    expect((await slice.origin()) % 64).toBe(0);
    expect(text(await zip.readEntry(zip.find("archive/data.pkl")!))).toBe("pickle bytes");
  });

  it("opens an empty archive", async () => {
    const zip = await open([]);
    expect(zip.entries).toEqual([]);
  });

  it("finds the end record behind a comment, ignoring a fake signature inside it", async () => {
    const fake = "PK\u0005\u0006 looks like an end record";
    const zip = await open([{ name: "a/data.pkl", data: "x" }], { comment: fake });
    expect(zip.entries.map((e) => e.name)).toEqual(["a/data.pkl"]);
  });

  it("reads zip64 sizes and offsets exactly from the extra fields and end records", async () => {
    const data = new Uint8Array(300).map((_, i) => i & 0xff);
    const source = memory(
      buildZip(
        [
          { name: "m/data.pkl", data: "abc", zip64: true },
          { name: "m/data/0", data, zip64: true },
        ],
        { zip64End: true },
      ),
    );
    const zip = await readZipArchive(source);
    expect(zip.zip64).toBe(true);
    const entry = zip.find("m/data/0")!;
    expect(entry.uncompressedSize).toBe(300);
    expect([...(await zip.readEntry(entry))]).toEqual([...data]);
    expect(text(await zip.readEntry(zip.find("m/data.pkl")!))).toBe("abc");
  });

  it("decodes names as CP437 unless the UTF-8 flag is set", async () => {
    const zip = await open([
      { name: "", nameBytes: new Uint8Array([0x63, 0x61, 0x66, 0x82]), flags: 0, data: "1" },
      { name: "naïve/ü", data: "2" },
    ]);
    // Python: b"caf\x82".decode("cp437") == "café".
    expect(zip.entries.map((e) => e.name)).toEqual(["café", "naïve/ü"]);
  });

  it("accepts local headers that defer CRC and sizes to a data descriptor", async () => {
    const zip = await open([
      {
        name: "a/data/0",
        data: "abcd",
        flags: 0x0808,
        local: { crc: 0, compressedSize: 0, uncompressedSize: 0 },
      },
    ]);
    expect(text(await zip.readEntry(zip.entries[0]!))).toBe("abcd");
  });

  it("reads an archive written by Python's zipfile as zipfile reads it", async () => {
    const fixtures = path.join(here, "fixtures");
    const expected = JSON.parse(readFileSync(path.join(fixtures, "python-made.json"), "utf8"));
    const source = await FileSource.open(path.join(fixtures, "python-made.zip"));
    try {
      expect(source.size).toBe(expected.size);
      const zip = await readZipArchive(source);
      expect(zip.entries.length).toBe(expected.entries.length);
      for (const [i, want] of expected.entries.entries()) {
        const entry = zip.entries[i]!;
        expect(entry).toEqual({
          name: want.name,
          method: want.method,
          flags: want.flags,
          crc32: want.crc32,
          compressedSize: want.compressedSize,
          uncompressedSize: want.uncompressedSize,
          localHeaderOffset: want.localHeaderOffset,
        });
        if (want.method === 0) {
          const bytes = await zip.readEntry(entry);
          expect(Buffer.from(bytes).toString("hex")).toBe(want.contentHex);
        } else {
          expect(() => zip.entrySource(entry)).toThrow(/compressed/);
        }
      }
    } finally {
      await source.close();
    }
  });
});

describe("readZipArchive: refusals", () => {
  const expectCode = async (run: () => unknown, code: string) => {
    const error = await errorOf(run);
    expect(error).toBeInstanceOf(ArchiveError);
    expect(error.code).toBe(code);
    return error;
  };

  it("refuses files that are not zip archives", async () => {
    await expectCode(() => readZipArchive(memory(toBytes("not a zip at all"))), "NOT_A_ZIP");
    await expectCode(() => readZipArchive(memory(new Uint8Array(0))), "NOT_A_ZIP");
  });

  it("refuses compressed entries lazily, naming them", async () => {
    const zip = await open([
      { name: "a/data.pkl", data: "stored" },
      { name: "a/data/0", data: "x".repeat(100), method: 8 },
    ]);
    const entry = zip.find("a/data/0")!;
    expect(entry.method).toBe(8);
    expect(entry.compressedSize).toBeLessThan(100);
    const error = await expectCode(() => zip.entrySource(entry), "COMPRESSED_ENTRY");
    expect(error.message).toContain("a/data/0");
    expect(error.message).toContain("re-zipped");
    await expectCode(() => zip.readEntry(entry), "COMPRESSED_ENTRY");
  });

  it("refuses encrypted entries", async () => {
    await expectCode(
      () => open([{ name: "a/data.pkl", data: "x", flags: 0x0801 }]),
      "ENCRYPTED_ENTRY",
    );
  });

  it.each([
    ["../evil.py", "PARENT_SEGMENT_IN_NAME"],
    ["archive/../../evil", "PARENT_SEGMENT_IN_NAME"],
    ["/etc/passwd", "ABSOLUTE_ENTRY_NAME"],
    ["C:/Windows/evil.dll", "ABSOLUTE_ENTRY_NAME"],
    ["archive\\data.pkl", "BACKSLASH_IN_NAME"],
    ["archive/data.pkl\u0000.txt", "NUL_IN_NAME"],
  ])("refuses the entry name %j (%s)", async (name, code) => {
    await expectCode(() => open([{ name, data: "x" }]), code);
  });

  it("refuses names flagged UTF-8 that are not", async () => {
    const nameBytes = new Uint8Array([0x61, 0xff, 0xfe]);
    await expectCode(() => open([{ name: "", nameBytes, data: "x" }]), "BAD_ENTRY_NAME");
  });

  it("refuses duplicate names", async () => {
    await expectCode(
      () =>
        open([
          { name: "a/data.pkl", data: "one" },
          { name: "a/data.pkl", data: "two" },
        ]),
      "DUPLICATE_ENTRY",
    );
  });

  it("refuses entries whose data would lie outside the file", async () => {
    await expectCode(
      () => open([{ name: "a/data/0", data: "abc", central: { offset: 100_000 } }]),
      "ENTRY_OUT_OF_BOUNDS",
    );
    await expectCode(
      () =>
        open([
          {
            name: "a/data/0",
            data: "abc",
            central: { compressedSize: 5000, uncompressedSize: 5000 },
          },
        ]),
      "ENTRY_OUT_OF_BOUNDS",
    );
  });

  it("refuses a directory whose size or entry count does not add up", async () => {
    const entries = [
      { name: "a/data.pkl", data: "one" },
      { name: "a/data/0", data: "two" },
    ];
    await expectCode(() => open(entries, { directorySizeDelta: 10 }), "DIRECTORY_OUT_OF_FILE");
    await expectCode(() => open(entries, { directorySizeDelta: -10 }), "DIRECTORY_SIZE_MISMATCH");
    await expectCode(() => open(entries, { entryCount: 3 }), "ENTRY_COUNT_MISMATCH");
    await expectCode(() => open(entries, { entryCount: 1 }), "ENTRY_COUNT_MISMATCH");
  });

  it("refuses a directory over the size limit before reading it", async () => {
    // A 300 MiB "archive" whose end record claims everything before it is the directory.
    const size = 300 << 20;
    const end = buildZip([], { directoryOffset: 0, directorySizeDelta: size - 22 });
    let bytesRead = 0;
    const source: ByteSource = {
      name: "huge.zip",
      size,
      get bytesRead() {
        return bytesRead;
      },
      async read(offset, length) {
        bytesRead += length;
        const bytes = new Uint8Array(length);
        // Only the end record has content; serve it where it lies.
        for (let i = 0; i < length; i++) bytes[i] = end[offset + i - (size - end.length)] ?? 0;
        return bytes;
      },
      async readInto() {
        throw new Error("not used");
      },
      async close() {},
    };
    const error = await errorOf(() => readZipArchive(source));
    expect(error).toBeInstanceOf(LimitExceededError);
    expect(error.code).toBe("ZIP_DIRECTORY_TOO_LARGE");
    expect(bytesRead).toBe(42);
  });

  it("refuses a truncated archive", async () => {
    const bytes = buildZip([{ name: "a/data.pkl", data: "x".repeat(50) }]);
    // Cut inside the central directory: the end record is gone.
    await expectCode(
      () => readZipArchive(memory(bytes.subarray(0, bytes.length - 30))),
      "NOT_A_ZIP",
    );
  });

  it("refuses multi-disk archives", async () => {
    await expectCode(() => open([{ name: "a/data.pkl", data: "x" }], { disk: 1 }), "MULTI_DISK");
    await expectCode(
      () => open([{ name: "a/data.pkl", data: "x" }], { disk: 2, zip64End: true }),
      "MULTI_DISK",
    );
    await expectCode(
      () => open([{ name: "a/data.pkl", data: "x", zip64: true, central: { disk: 0xffff } }]),
      "BAD_ZIP64_EXTRA",
    );
  });

  it("refuses zip64 values of 2^53 or more instead of rounding them", async () => {
    await expectCode(
      () => open([{ name: "a/data/0", data: "x", zip64: true, central: { offset: 2 ** 53 } }]),
      "ZIP64_TOO_LARGE",
    );
  });

  it.each([
    ["signature", { signature: 0x08074b50 }],
    ["name", { nameBytes: toBytes("a/data/1") }],
    ["flags", { flags: 0x0000 }],
    ["compression method", { method: 8 }],
    ["CRC-32", { crc: 1234 }],
    ["size", { uncompressedSize: 3, compressedSize: 3 }],
  ])("refuses a local header whose %s disagrees, on first use", async (what, local) => {
    const zip = await open([{ name: "a/data/0", data: "abcd", local }]);
    const slice = zip.entrySource(zip.entries[0]!);
    const error = await expectCode(() => slice.read(0, 4), "LOCAL_HEADER_MISMATCH");
    expect(error.message).toContain(what);
    expect(error.message).toContain("a/data/0");
  });

  it("refuses entry data pushed past the directory by a long local extra field", async () => {
    const bytes = buildZip([{ name: "a/data/0", data: "abcd" }]);
    // Grow the first local header's extra length (offset 28) so its data would start inside
    // the central directory: only visible once the local header is read.
    bytes[28] = 0xff;
    bytes[29] = 0x7f;
    const zip = await readZipArchive(memory(bytes));
    await expectCode(() => zip.readEntry(zip.entries[0]!), "ENTRY_OUT_OF_BOUNDS");
  });

  it("verifies the CRC-32 of records read whole", async () => {
    const zip = await open([{ name: "a/data.pkl", data: "pickle", crc: 0xdeadbeef }]);
    const entry = zip.entries[0]!;
    const error = await expectCode(() => zip.readEntry(entry), "CRC_MISMATCH");
    expect(error.message).toContain("a/data.pkl");
    // Lazy slices do not checksum (they may be read piecewise): the bytes are still there.
    expect(text(await zip.entrySource(entry).read(0, 6))).toBe("pickle");
  });

  it.skipIf(!hasCorpora)("refuses the password-protected archives of the corpora", async () => {
    for (const file of [
      "mmaitre314+picklescan/tests/data/benign_password_protected.zip",
      "protectai+modelscan/tests/data/password_protected.zip",
    ]) {
      const source = await FileSource.open(path.join(corpora, file));
      try {
        await expectCode(() => readZipArchive(source), "ENCRYPTED_ENTRY");
      } finally {
        await source.close();
      }
    }
  });
});
