import { ArchiveError } from "../../errors.js";
import type { ByteSource } from "../../io/byte-source.js";
import {
  END_SIGNATURE,
  END_SIZE,
  ZIP64_END_SIGNATURE,
  ZIP64_END_SIZE,
  ZIP64_LOCATOR_SIGNATURE,
  ZIP64_LOCATOR_SIZE,
} from "./constants.js";
import { u16, u32, u64 } from "./little-endian.js";

const MAX_COMMENT = 0xffff;

/** Where the central directory is and what it should hold, from the end records. */
export interface DirectoryLocation {
  offset: number;
  size: number;
  entryCount: number;
  /** Where the end records begin: the directory must end exactly here. */
  endRecordsStart: number;
  zip64: boolean;
}

/**
 * Finds the end-of-central-directory record (scanning at most the last 65,557 bytes, but first
 * trying the common comment-less case with one small read), then the zip64 locator and record
 * when present.
 */
export async function locateDirectory(source: ByteSource): Promise<DirectoryLocation> {
  const file = source.name;
  const size = source.size;
  // The usual case: no comment, so the record is the last 22 bytes; take the locator with it.
  let windowStart = Math.max(0, size - END_SIZE - ZIP64_LOCATOR_SIZE);
  let window = await source.read(windowStart, size - windowStart);
  let eocd = findEndRecord(window, windowStart, size);
  if (eocd === undefined && windowStart > 0) {
    windowStart = Math.max(0, size - END_SIZE - MAX_COMMENT);
    window = await source.read(windowStart, size - windowStart);
    eocd = findEndRecord(window, windowStart, size);
  }
  if (eocd === undefined) {
    throw new ArchiveError("NOT_A_ZIP", "no zip end-of-central-directory record found", {
      file,
      hint: "The file is not a zip archive, or it was truncated.",
    });
  }
  const at = eocd - windowStart;
  const disk = u16(window, at + 4);
  const directoryDisk = u16(window, at + 6);
  const entriesOnDisk = u16(window, at + 8);
  const entryCount = u16(window, at + 10);
  const directorySize = u32(window, at + 12);
  const directoryOffset = u32(window, at + 16);

  const locatorAt = eocd - ZIP64_LOCATOR_SIZE;
  const locator =
    locatorAt < 0
      ? undefined
      : locatorAt >= windowStart
        ? window.subarray(locatorAt - windowStart, at)
        : await source.read(locatorAt, ZIP64_LOCATOR_SIZE);
  if (locator && u32(locator, 0) === ZIP64_LOCATOR_SIGNATURE) {
    return readZip64(source, locator, locatorAt);
  }
  if (disk !== 0 || directoryDisk !== 0 || entriesOnDisk !== entryCount) {
    throw multiDisk(file, eocd);
  }
  return {
    offset: directoryOffset,
    size: directorySize,
    entryCount,
    endRecordsStart: eocd,
    zip64: false,
  };
}

/** Offset of the last end record whose comment runs exactly to the end of the file. */
function findEndRecord(window: Uint8Array, windowStart: number, size: number): number | undefined {
  for (let i = window.length - END_SIZE; i >= 0; i--) {
    if (u32(window, i) !== END_SIGNATURE) continue;
    if (windowStart + i + END_SIZE + u16(window, i + 20) === size) return windowStart + i;
  }
  return undefined;
}

async function readZip64(
  source: ByteSource,
  locator: Uint8Array,
  locatorAt: number,
): Promise<DirectoryLocation> {
  const file = source.name;
  const recordOffset = u64(locator, 8);
  if (u32(locator, 4) !== 0 || u32(locator, 16) > 1) throw multiDisk(file, locatorAt);
  if (recordOffset === undefined || recordOffset + ZIP64_END_SIZE > locatorAt) {
    throw new ArchiveError(
      "BAD_ZIP64",
      `zip64 end record offset ${recordOffset ?? ">= 2^53"} does not lie before its locator`,
      { file, offset: locatorAt, hint: "The archive is corrupt or truncated." },
    );
  }
  const record = await source.read(recordOffset, ZIP64_END_SIZE);
  const recordSize = u64(record, 4);
  if (
    u32(record, 0) !== ZIP64_END_SIGNATURE ||
    recordSize === undefined ||
    recordSize < ZIP64_END_SIZE - 12 ||
    recordOffset + 12 + recordSize > locatorAt
  ) {
    throw new ArchiveError("BAD_ZIP64", "zip64 end-of-central-directory record is malformed", {
      file,
      offset: recordOffset,
      hint: "The archive is corrupt or truncated.",
    });
  }
  const entriesOnDisk = u64(record, 24);
  const entryCount = u64(record, 32);
  const size = u64(record, 40);
  const offset = u64(record, 48);
  if (
    entriesOnDisk === undefined ||
    entryCount === undefined ||
    size === undefined ||
    offset === undefined
  ) {
    throw new ArchiveError("ZIP64_TOO_LARGE", "zip64 end record holds a value of 2^53 or more", {
      file,
      offset: recordOffset,
      hint: "No real archive is that large: the file is corrupt.",
    });
  }
  if (u32(record, 16) !== 0 || u32(record, 20) !== 0 || entriesOnDisk !== entryCount) {
    throw multiDisk(file, recordOffset);
  }
  return { offset, size, entryCount, endRecordsStart: recordOffset, zip64: true };
}

function multiDisk(file: string, offset: number): ArchiveError {
  return new ArchiveError("MULTI_DISK", "multi-disk (split) zip archives are not supported", {
    file,
    offset,
    hint: "Join the parts into one archive first.",
  });
}
