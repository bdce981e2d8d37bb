import { WriteError } from "../../errors.js";
import { crc32 } from "../../formats/zip/crc32.js";
import type { ByteSink } from "../sink.js";
import {
  centralHeader,
  dataDescriptor,
  type EntryRecord,
  endRecords,
  localHeader,
  ZIP64_LIMIT,
} from "./zip-records.js";

/**
 * A streaming writer of torch-style zip archives: every record is stored (not compressed) under
 * one folder, its data starting at a 64-byte-aligned offset, followed by a data descriptor
 * carrying the CRC-32 computed while the data streamed through. Sizes are declared up front (a
 * tensor's size follows from its shape), which decides the alignment padding and zip64 fields
 * before the data; nothing is ever rewritten, so any sequential sink works.
 */

export interface ZipRecordInfo {
  /** Full name in the archive (`archive/data/0`). */
  name: string;
  /** Name relative to the folder (`data/0`). */
  record: string;
  /** Offset of the local header. */
  offset: number;
  /** Offset of the first data byte: a multiple of 64. */
  dataOffset: number;
  size: number;
  crc: number;
}

export interface ZipWriter {
  /** Adds a record whose bytes are all in memory. */
  addRecord(record: string, data: Uint8Array): Promise<void>;
  /** Adds a record of exactly `size` bytes given in chunks (each written before the next is asked for). */
  addStreamedRecord(record: string, size: number, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** Records written so far, in order. */
  readonly records: readonly ZipRecordInfo[];
  /** Writes the central directory and end records; returns the archive's size. Does not close the sink. */
  finish(): Promise<number>;
}

/** A record whose local header is built but not yet written. */
interface OpenedRecord {
  name: string;
  nameBytes: Uint8Array;
  header: Uint8Array;
}

/** miniz refuses a central directory this large; so does loadout. */
const MAX_CENTRAL_DIRECTORY = ZIP64_LIMIT;

const encoder = new TextEncoder();

function checkRecordName(folder: string, record: string, full: Uint8Array): void {
  // Both header formats give the name a 16-bit length.
  if (full.byteLength > 0xffff) {
    throw new WriteError(
      "INVALID_RECORD_NAME",
      `zip record name of ${full.byteLength} bytes is longer than zip allows (65,535)`,
      { key: `${folder}/${record}` },
    );
  }
}

function sizeMismatch(name: string, size: number, direction: "more" | "fewer"): WriteError {
  return new WriteError(
    "RECORD_SIZE_MISMATCH",
    `record data came to ${direction} than the ${size} bytes declared`,
    {
      key: name,
      hint: "A tensor's data did not match its shape and dtype.",
    },
  );
}

export function createZipWriter(sink: ByteSink, folder: string): ZipWriter {
  let position = 0;
  let finished = false;
  const records: ZipRecordInfo[] = [];
  const entries: EntryRecord[] = [];

  async function emit(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength === 0) return;
    await sink.write(bytes);
    position += bytes.byteLength;
  }

  function begin(record: string, size: number): OpenedRecord {
    if (finished) {
      throw new WriteError("ZIP_FINISHED", "record added after the zip was finished", {
        key: record,
      });
    }
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new WriteError("INVALID_RECORD_SIZE", `record size ${size} is not a byte count`, {
        key: record,
      });
    }
    const name = `${folder}/${record}`;
    const nameBytes = encoder.encode(name);
    checkRecordName(folder, record, nameBytes);
    return { name, nameBytes, header: localHeader(nameBytes, position, size) };
  }

  function end(
    opened: OpenedRecord,
    record: string,
    offset: number,
    size: number,
    crc: number,
  ): void {
    const { name, nameBytes, header } = opened;
    records.push({ name, record, offset, dataOffset: offset + header.byteLength, size, crc });
    entries.push({ nameBytes, offset, size, crc });
  }

  return {
    records,

    async addRecord(record, data) {
      const opened = begin(record, data.byteLength);
      const { header } = opened;
      const offset = position;
      const crc = crc32(data);
      const descriptor = dataDescriptor(offset, data.byteLength, crc);
      const whole = new Uint8Array(header.byteLength + data.byteLength + descriptor.byteLength);
      whole.set(header, 0);
      whole.set(data, header.byteLength);
      whole.set(descriptor, header.byteLength + data.byteLength);
      await emit(whole);
      end(opened, record, offset, data.byteLength, crc);
    },

    async addStreamedRecord(record, size, chunks) {
      const opened = begin(record, size);
      const { name, header } = opened;
      const offset = position;
      await emit(header);
      let crc = 0;
      let done = 0;
      for await (const chunk of chunks) {
        if (done + chunk.byteLength > size) throw sizeMismatch(name, size, "more");
        crc = crc32(chunk, crc);
        done += chunk.byteLength;
        await emit(chunk);
      }
      if (done !== size) throw sizeMismatch(name, size, "fewer");
      await emit(dataDescriptor(offset, size, crc));
      end(opened, record, offset, size, crc);
    },

    async finish() {
      if (finished) throw new WriteError("ZIP_FINISHED", "zip finished twice", { key: folder });
      finished = true;
      const directoryOffset = position;
      const headers = entries.map(centralHeader);
      const directorySize = headers.reduce((n, h) => n + h.byteLength, 0);
      if (directorySize >= MAX_CENTRAL_DIRECTORY) {
        throw new WriteError(
          "TOO_MANY_RECORDS",
          `the zip's central directory would take ${directorySize} bytes; torch's zip reader (miniz) reads less than 4 GiB`,
          { key: folder, hint: "Write fewer tensors per file." },
        );
      }
      const directory = new Uint8Array(directorySize);
      let at = 0;
      for (const h of headers) {
        directory.set(h, at);
        at += h.byteLength;
      }
      await emit(directory);
      await emit(endRecords(entries.length, directoryOffset, directorySize));
      return position;
    },
  };
}
