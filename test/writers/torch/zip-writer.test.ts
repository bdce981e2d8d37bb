import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WriteError } from "../../../src/errors.js";
import { readZipArchive } from "../../../src/formats/zip/zip.js";
import { MemorySource } from "../../../src/io/byte-source.js";
import { serializationId } from "../../../src/writers/torch/serialization-id.js";
import {
  centralHeader,
  dataDescriptor,
  endRecords,
  localHeader,
  paddingLength,
} from "../../../src/writers/torch/zip-records.js";
import { createZipWriter } from "../../../src/writers/torch/zip-writer.js";
import { findPython, recordingSink } from "./helpers.js";

const fixture = (name: string) =>
  readFileSync(new URL(`../../fixtures/torch/${name}`, import.meta.url));

/** Files torch.save wrote untouched (the others were rewritten or appended to with Python's zipfile). */
const TORCH_MADE = [
  "net_state_dict.pt",
  "net_fresh.pt",
  "dtype_zoo.pt",
  "lightning.ckpt",
  "net_protocol2.pt",
];

async function recordsOf(file: Uint8Array) {
  const archive = await readZipArchive(new MemorySource(file, "fixture"));
  const folder = archive.entries[0]!.name.split("/")[0]!;
  const records = [];
  for (const entry of archive.entries) {
    records.push({
      record: entry.name.slice(folder.length + 1),
      data: await archive.readEntry(entry),
      crc: entry.crc32,
    });
  }
  return { folder, records };
}

const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

describe("the zip writer reproduces torch.save's archives", () => {
  for (const name of TORCH_MADE) {
    it(`rewrites ${name} byte for byte from its records`, async () => {
      const file = fixture(name);
      const { folder, records } = await recordsOf(file);
      const sink = recordingSink();
      const zip = createZipWriter(sink, folder);
      for (const { record, data } of records) {
        // Alternate the two ways in, which must give the same bytes.
        if (record.startsWith("data/")) {
          await zip.addStreamedRecord(record, data.byteLength, chunked(data, 7));
        } else {
          await zip.addRecord(record, data);
        }
      }
      const size = await zip.finish();
      expect(size).toBe(file.byteLength);
      expect(Buffer.from(sink.bytes()).equals(file)).toBe(true);
      for (const info of zip.records) expect(info.dataOffset % 64).toBe(0);
    });

    it(`computes the CRC half of ${name}'s serialization id as torch does`, async () => {
      const { records } = await recordsOf(fixture(name));
      const id = new TextDecoder().decode(records.at(-1)!.data);
      const written = records
        .slice(0, -1)
        .map(({ record, data, crc }) => ({ name: record, size: data.byteLength, crc }));
      const ours = serializationId(written);
      expect(ours).toMatch(/^\d{40}$/);
      expect(ours.slice(20)).toBe(id.slice(20));
    });
  }
});

async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.byteLength; at += size) yield data.subarray(at, at + size);
}

describe("zip records", () => {
  const name = new TextEncoder().encode("archive/data/0");

  it("pad every entry's data to a multiple of 64 with torch's FB extra field", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 2 ** 34 }),
        (offset, nameLength, size) => {
          const header = localHeader(new Uint8Array(nameLength).fill(0x61), offset, size);
          expect((offset + header.byteLength) % 64).toBe(0);
          const extraLength = view(header).getUint16(28, true);
          expect(header.byteLength).toBe(30 + nameLength + extraLength);
          const fb = 30 + nameLength + (extraLength - 4 - paddingLength(offset, nameLength, size));
          expect([...header.subarray(fb, fb + 2)]).toEqual([0x46, 0x42]);
          expect(header.subarray(fb + 4).every((b) => b === 0x5a)).toBe(true);
        },
      ),
    );
  });

  it("write a small entry's local header as miniz does: no CRC or sizes, bit 3 set", () => {
    const header = localHeader(name, 0, 10);
    const v = view(header);
    expect(v.getUint32(0, true)).toBe(0x04034b50);
    expect(v.getUint16(4, true)).toBe(0); // version needed
    expect(v.getUint16(6, true)).toBe(0x0808);
    expect(v.getUint16(8, true)).toBe(0); // stored
    expect([...header.subarray(10, 26)].every((b) => b === 0)).toBe(true);
    expect(v.getUint16(26, true)).toBe(14);
    // data at 30 + 14 + 4 + padding = 64: 16 'Z's
    expect(v.getUint16(28, true)).toBe(20);
    expect(header.byteLength).toBe(64);
  });

  it("give an empty entry no data descriptor (bit 3 clear)", () => {
    expect(view(localHeader(name, 0, 0)).getUint16(6, true)).toBe(0x0800);
    expect(dataDescriptor(0, 0, 0).byteLength).toBe(0);
    const central = centralHeader({ nameBytes: name, offset: 0, size: 0, crc: 0 });
    expect(view(central).getUint16(8, true)).toBe(0x0800);
  });

  it("put a zip64 offset in both headers once an entry starts at 0xFFFFFFFF or later", () => {
    const offset = 2 ** 32;
    const header = localHeader(name, offset, 10);
    const v = view(header);
    // zip64 extra: id 1, 8 bytes: the offset; then FB + padding: 30 + 14 + 12 + 4 = 60 -> 4 'Z's
    expect(v.getUint16(28, true)).toBe(12 + 4 + 4);
    expect(v.getUint16(44, true)).toBe(1);
    expect(v.getUint16(46, true)).toBe(8);
    expect(v.getBigUint64(48, true)).toBe(BigInt(offset));
    expect((offset + header.byteLength) % 64).toBe(0);
    const descriptor = view(dataDescriptor(offset, 10, 0xdeadbeef));
    expect(descriptor.byteLength).toBe(24);
    expect(descriptor.getUint32(4, true)).toBe(0xdeadbeef);
    expect(descriptor.getBigUint64(8, true)).toBe(10n);
    expect(descriptor.getBigUint64(16, true)).toBe(10n);
    const central = view(centralHeader({ nameBytes: name, offset, size: 10, crc: 1 }));
    expect(central.getUint32(20, true)).toBe(10);
    expect(central.getUint32(24, true)).toBe(10);
    expect(central.getUint32(42, true)).toBe(0xffffffff);
    expect(central.getUint16(30, true)).toBe(12);
    expect(central.getBigUint64(46 + 14 + 4, true)).toBe(BigInt(offset));
    // One byte earlier is still a 32-bit offset.
    expect(dataDescriptor(0xfffffffe, 10, 0).byteLength).toBe(16);
    expect(dataDescriptor(0xffffffff, 10, 0).byteLength).toBe(24);
  });

  it("put zip64 sizes in both headers for an entry of 0xFFFFFFFF bytes or more", () => {
    for (const size of [0xffffffff, 2 ** 33 + 5]) {
      const header = localHeader(name, 0, size);
      const v = view(header);
      // zip64 extra: id 1, 16 bytes: uncompressed then compressed size
      expect(v.getUint16(46, true)).toBe(16);
      expect(v.getBigUint64(48, true)).toBe(BigInt(size));
      expect(v.getBigUint64(56, true)).toBe(BigInt(size));
      expect(header.byteLength).toBe(128);
      const central = view(centralHeader({ nameBytes: name, offset: 64, size, crc: 1 }));
      expect(central.getUint32(20, true)).toBe(0xffffffff);
      expect(central.getUint32(24, true)).toBe(0xffffffff);
      expect(central.getUint32(42, true)).toBe(64);
      expect(central.getUint16(30, true)).toBe(20);
    }
  });

  it("write zip64 end records always, saturating the classic end record", () => {
    const records = view(endRecords(70_000, 2 ** 33, 5_000_000));
    expect(records.byteLength).toBe(56 + 20 + 22);
    expect(records.getUint32(0, true)).toBe(0x06064b50);
    expect(records.getBigUint64(24, true)).toBe(70_000n);
    expect(records.getBigUint64(32, true)).toBe(70_000n);
    expect(records.getBigUint64(40, true)).toBe(5_000_000n);
    expect(records.getBigUint64(48, true)).toBe(2n ** 33n);
    expect(records.getUint32(56, true)).toBe(0x07064b50);
    expect(records.getBigUint64(64, true)).toBe(2n ** 33n + 5_000_000n);
    expect(records.getUint32(76, true)).toBe(0x06054b50);
    expect(records.getUint16(84, true)).toBe(0xffff);
    expect(records.getUint32(88, true)).toBe(5_000_000);
    expect(records.getUint32(92, true)).toBe(0xffffffff);
  });
});

describe("the zip writer", () => {
  it("writes more than 65,535 entries, which readers find through the zip64 end record", async () => {
    const sink = recordingSink();
    const zip = createZipWriter(sink, "many");
    const count = 65_540;
    for (let i = 0; i < count; i++) await zip.addRecord(`data/${i}`, new Uint8Array([i & 0xff]));
    await zip.finish();
    const bytes = sink.bytes();
    const archive = await readZipArchive(new MemorySource(bytes, "many.zip"));
    expect(archive.entries.length).toBe(count);
    const last = archive.entries[count - 1]!;
    expect(last.name).toBe(`many/data/${count - 1}`);
    expect([...(await archive.readEntry(last))]).toEqual([(count - 1) & 0xff]);

    const python = findPython();
    if (!python) {
      console.warn(
        "python3 is not available: Python's zipfile did not check the 65,540-entry archive",
      );
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "loadout-zip-"));
    try {
      const path = join(dir, "many.zip");
      writeFileSync(path, bytes);
      const script =
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n" +
        "print(len(z.infolist()), z.read('many/data/65539')[0])";
      const run = spawnSync(python, ["-c", script, path], { encoding: "utf8" });
      expect(run.stderr).toBe("");
      expect(run.stdout.trim()).toBe(`${count} ${(count - 1) & 0xff}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a streamed record that does not come to its declared size", async () => {
    const zip = createZipWriter(recordingSink(), "archive");
    await expect(
      zip.addStreamedRecord("data/0", 4, chunked(new Uint8Array(5), 5)),
    ).rejects.toMatchObject({
      code: "RECORD_SIZE_MISMATCH",
      key: "archive/data/0",
    });
    const again = createZipWriter(recordingSink(), "archive");
    await expect(
      again.addStreamedRecord("data/0", 4, chunked(new Uint8Array(3), 2)),
    ).rejects.toThrow(/fewer than the 4 bytes/);
  });

  it("refuses records after finishing, and names longer than zip allows", async () => {
    const zip = createZipWriter(recordingSink(), "archive");
    await expect(zip.addRecord("x".repeat(70_000), new Uint8Array(1))).rejects.toBeInstanceOf(
      WriteError,
    );
    await zip.finish();
    await expect(zip.addRecord("late", new Uint8Array(1))).rejects.toMatchObject({
      code: "ZIP_FINISHED",
    });
  });
});
