import {
  CENTRAL_HEADER_SIGNATURE,
  DATA_DESCRIPTOR_SIGNATURE,
  END_SIGNATURE,
  FLAG_DATA_DESCRIPTOR,
  FLAG_UTF8,
  LOCAL_HEADER_SIGNATURE,
  LOCAL_HEADER_SIZE,
  ZIP64_END_SIGNATURE,
  ZIP64_EXTRA_ID,
  ZIP64_LOCATOR_SIGNATURE,
} from "../../formats/zip/constants.js";
import { ByteBuilder } from "./byte-builder.js";

/**
 * The bytes of the zip records torch.save writes, as PyTorchStreamWriter (caffe2/serialize/
 * inline_container.cc) has miniz write them: entries stored, UTF-8 names, no timestamps, local
 * headers without CRC or sizes (a data descriptor follows each non-empty entry), an "FB" extra
 * field of 'Z's padding every entry's data to a 64-byte boundary, and zip64 end records always.
 * An entry whose size or local header offset reaches 0xFFFFFFFF gets a zip64 extra field (in
 * both headers) and a 64-bit data descriptor, exactly where miniz puts them.
 */

/** Sizes and offsets from this value up need zip64 fields (miniz tests `>=`). */
export const ZIP64_LIMIT = 0xffffffff;

/** Where every entry's data starts: a multiple of this (torch's kFieldAlignment). */
export const DATA_ALIGNMENT = 64;

const EMPTY = new Uint8Array(0);
/** torch's padding extra field: "FB" (0x4246), then the padding length, then that many 'Z'. */
const PADDING_EXTRA_ID = 0x4246;
const PADDING_BYTE = 0x5a;

/** One entry as the central directory describes it. */
export interface EntryRecord {
  nameBytes: Uint8Array;
  /** Offset of the local header. */
  offset: number;
  size: number;
  crc: number;
}

function sizeIsLarge(size: number): boolean {
  return size >= ZIP64_LIMIT;
}

function offsetIsLarge(offset: number): boolean {
  return offset >= ZIP64_LIMIT;
}

export function needsZip64(offset: number, size: number): boolean {
  return sizeIsLarge(size) || offsetIsLarge(offset);
}

/** Only a non-empty entry has a data descriptor (miniz sets bit 3 only when there is data). */
function flagsFor(size: number): number {
  return size > 0 ? FLAG_UTF8 | FLAG_DATA_DESCRIPTOR : FLAG_UTF8;
}

/** miniz's zip64 extra field: the 64-bit sizes when the size is large, the offset when it is. */
function zip64Extra(offset: number, size: number): Uint8Array {
  const out = new ByteBuilder(32);
  const fields = (sizeIsLarge(size) ? 2 : 0) + (offsetIsLarge(offset) ? 1 : 0);
  out.u16(ZIP64_EXTRA_ID).u16(fields * 8);
  if (sizeIsLarge(size)) out.u64(size).u64(size);
  if (offsetIsLarge(offset)) out.u64(offset);
  return out.toBytes();
}

/** Padding bytes that make data start at a multiple of 64 (torch's detail::getPadding). */
export function paddingLength(offset: number, nameLength: number, size: number): number {
  let start = offset + LOCAL_HEADER_SIZE + nameLength + 4;
  if (needsZip64(offset, size)) {
    start += 4;
    if (sizeIsLarge(size)) start += 16;
    if (offsetIsLarge(offset)) start += 8;
  }
  return (DATA_ALIGNMENT - (start % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
}

/**
 * The local header of an entry of `size` bytes at `offset`, with its name and extra fields: the
 * entry's data follows it, at `offset + header.byteLength`, a multiple of 64.
 */
export function localHeader(nameBytes: Uint8Array, offset: number, size: number): Uint8Array {
  const zip64 = needsZip64(offset, size) ? zip64Extra(offset, size) : EMPTY;
  const padding = paddingLength(offset, nameBytes.byteLength, size);
  const extraLength = zip64.byteLength + 4 + padding;
  const out = new ByteBuilder(LOCAL_HEADER_SIZE + nameBytes.byteLength + extraLength);
  out.u32(LOCAL_HEADER_SIGNATURE);
  out.u16(0); // version needed: miniz writes 0 for stored entries
  out.u16(flagsFor(size));
  out.u16(0); // method: stored
  out.u16(0).u16(0); // time, date
  out.u32(0).u32(0).u32(0); // crc and sizes: in the data descriptor
  out.u16(nameBytes.byteLength).u16(extraLength);
  out.bytes(nameBytes).bytes(zip64);
  out.u16(PADDING_EXTRA_ID).u16(padding).fill(PADDING_BYTE, padding);
  return out.toBytes();
}

/** The data descriptor after a non-empty entry's data (none after an empty one). */
export function dataDescriptor(offset: number, size: number, crc: number): Uint8Array {
  if (size === 0) return EMPTY;
  const out = new ByteBuilder(24);
  out.u32(DATA_DESCRIPTOR_SIGNATURE).u32(crc);
  if (needsZip64(offset, size)) out.u64(size).u64(size);
  else out.u32(size).u32(size);
  return out.toBytes();
}

export function centralHeader(entry: EntryRecord): Uint8Array {
  const { nameBytes, offset, size, crc } = entry;
  const extra = needsZip64(offset, size) ? zip64Extra(offset, size) : EMPTY;
  const out = new ByteBuilder(46 + nameBytes.byteLength + extra.byteLength);
  out.u32(CENTRAL_HEADER_SIGNATURE);
  out.u16(0).u16(0); // version made by, version needed: miniz leaves both 0
  out.u16(flagsFor(size));
  out.u16(0); // stored
  out.u16(0).u16(0); // time, date
  out.u32(crc);
  out.u32(Math.min(size, ZIP64_LIMIT)).u32(Math.min(size, ZIP64_LIMIT));
  out.u16(nameBytes.byteLength).u16(extra.byteLength).u16(0); // comment length
  out.u16(0).u16(0).u32(0); // disk, internal and external attributes
  out.u32(Math.min(offset, ZIP64_LIMIT));
  out.bytes(nameBytes).bytes(extra);
  return out.toBytes();
}

/**
 * The zip64 end of central directory record, its locator and the end record, for a central
 * directory of `entries` entries and `size` bytes at `offset`. miniz writes the zip64 pair in
 * every archive torch makes; the end record's fields saturate at their 16- and 32-bit maxima.
 */
export function endRecords(entries: number, offset: number, size: number): Uint8Array {
  const zip64EndOffset = offset + size;
  const out = new ByteBuilder(56 + 20 + 22);
  out.u32(ZIP64_END_SIGNATURE).u64(44); // size of the rest of the record
  out.u16(0x031e).u16(0x002d); // made by (Unix, 3.0) and needed (4.5), as miniz writes them
  out.u32(0).u32(0); // this disk, disk of the central directory
  out.u64(entries).u64(entries).u64(size).u64(offset);
  out.u32(ZIP64_LOCATOR_SIGNATURE).u32(0).u64(zip64EndOffset).u32(1);
  out.u32(END_SIGNATURE).u16(0).u16(0);
  out.u16(Math.min(entries, 0xffff)).u16(Math.min(entries, 0xffff));
  out.u32(Math.min(size, ZIP64_LIMIT)).u32(Math.min(offset, ZIP64_LIMIT));
  out.u16(0); // comment length
  return out.toBytes();
}
