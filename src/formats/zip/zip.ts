import { ArchiveError, LimitExceededError } from "../../errors.js";
import { type ByteSource, MemorySource, SliceSource } from "../../io/byte-source.js";
import { asciiText, isAscii } from "../latin1.js";
import {
  CENTRAL_HEADER_SIGNATURE,
  CENTRAL_HEADER_SIZE,
  FLAG_DATA_DESCRIPTOR,
  FLAG_ENCRYPTED,
  FLAG_UTF8,
  LOCAL_HEADER_SIGNATURE,
  LOCAL_HEADER_SIZE,
  METHOD_STORED,
  ZIP64_EXTRA_ID,
} from "./constants.js";
import { crc32 } from "./crc32.js";
import { locateDirectory } from "./end-record.js";
import { u16, u32, u64 } from "./little-endian.js";
import { checkEntryName, decodeEntryName, entryNameProblem } from "./names.js";

/** The central directory is read in one piece: ~100 bytes an entry, so millions of entries. */
export const MAX_DIRECTORY_BYTES = 256 << 20;

/** One file in a zip archive, as its central directory record describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflated, ... */
  readonly method: number;
  /** General-purpose bit flags. */
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

export interface ZipArchive {
  readonly source: ByteSource;
  /** In central directory order. */
  readonly entries: readonly ZipEntry[];
  readonly byName: ReadonlyMap<string, ZipEntry>;
  readonly zip64: boolean;
  /**
   * The entry's bytes, read lazily: the local header is read and checked against the central
   * directory on first use. Throws COMPRESSED_ENTRY for entries that are not stored.
   */
  entrySource(entry: ZipEntry): SliceSource;
  /** The whole entry in memory with its CRC-32 verified: for small records such as data.pkl. */
  readEntry(entry: ZipEntry): Promise<Uint8Array>;
}

/**
 * A ZipEntry as parsed from the central directory. It also knows its raw name bytes (the local
 * header must repeat them exactly) and which archive it belongs to. Private fields keep the
 * public shape of a ZipEntry, and spare a map from entry to name with 20,000 entries.
 */
class DirectoryEntry implements ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
  /** The archive's identity (one object per readZipArchive call). */
  readonly #archive: object;
  /** The raw name when it is not ASCII; an ASCII name's bytes are its character codes. */
  readonly #rawName: Uint8Array | undefined;

  // Positional rather than a fields object: one entry per tensor, and no object to build for each.
  constructor(
    name: string,
    method: number,
    flags: number,
    crc32: number,
    compressedSize: number,
    uncompressedSize: number,
    localHeaderOffset: number,
    archive: object,
    rawName: Uint8Array | undefined,
  ) {
    this.name = name;
    this.method = method;
    this.flags = flags;
    this.crc32 = crc32;
    this.compressedSize = compressedSize;
    this.uncompressedSize = uncompressedSize;
    this.localHeaderOffset = localHeaderOffset;
    this.#archive = archive;
    this.#rawName = rawName;
    Object.freeze(this);
  }

  /** The name's bytes as the central directory stores them. */
  static rawName(entry: DirectoryEntry): Uint8Array {
    const raw = entry.#rawName;
    if (raw !== undefined) return raw;
    const name = entry.name;
    const bytes = new Uint8Array(name.length);
    for (let i = 0; i < name.length; i++) bytes[i] = name.charCodeAt(i);
    return bytes;
  }

  static nameLength(entry: DirectoryEntry): number {
    return entry.#rawName?.length ?? entry.name.length;
  }

  /** Whether `entry` was parsed by the readZipArchive call that made `archive`. */
  static isIn(entry: ZipEntry, archive: object): entry is DirectoryEntry {
    return entry instanceof DirectoryEntry && entry.#archive === archive;
  }
}

/**
 * An entry's bytes: a window of the archive starting after the entry's local header, which is
 * read and checked on first use. A SliceSource whose lazy start and name come from the entry
 * rather than from a closure and a string made for each entry at open (a torch archive has one
 * entry per tensor): the name (`file.pt:archive/data/0`) is built when first asked for.
 */
class EntrySource extends SliceSource {
  #name: string | undefined;

  constructor(
    parent: ByteSource,
    private readonly entry: DirectoryEntry,
    private readonly entryStart: (entry: DirectoryEntry) => Promise<number>,
  ) {
    super(parent, undefined, entry.uncompressedSize, "");
  }

  override get name(): string {
    this.#name ??= `${this.parent.name}:${this.entry.name}`;
    return this.#name;
  }

  protected override resolveStart(): Promise<number> {
    return this.entryStart(this.entry);
  }
}

/** Opens a zip archive by reading its end records and central directory (never the entries). */
export async function readZipArchive(source: ByteSource): Promise<ZipArchive> {
  const file = source.name;
  const directory = await locateDirectory(source);
  if (directory.offset + directory.size > directory.endRecordsStart) {
    throw new ArchiveError(
      "DIRECTORY_OUT_OF_FILE",
      `zip central directory (${directory.size} bytes at offset ${directory.offset}) runs past its end record at ${directory.endRecordsStart}`,
      { file, offset: directory.offset, hint: "The archive is truncated or corrupt." },
    );
  }
  if (directory.offset + directory.size !== directory.endRecordsStart) {
    throw new ArchiveError(
      "DIRECTORY_SIZE_MISMATCH",
      `zip central directory ends at ${directory.offset + directory.size} but its end record starts at ${directory.endRecordsStart}`,
      { file, offset: directory.offset, hint: "The archive is corrupt (or has data prepended)." },
    );
  }
  if (directory.size > MAX_DIRECTORY_BYTES) {
    throw new LimitExceededError(
      "ZIP_DIRECTORY_TOO_LARGE",
      `zip central directory of ${directory.size} bytes is over the ${MAX_DIRECTORY_BYTES}-byte limit`,
      {
        file,
        offset: directory.offset,
        hint: "No checkpoint has that many files: the archive is corrupt or crafted.",
      },
    );
  }
  const bytes = await source.read(directory.offset, directory.size);
  const identity = {};
  const entries = parseDirectory(bytes, directory.offset, directory.entryCount, file, identity);

  // One map operation per entry (a set, and the size says whether the name was new): with
  // 20,000 entries each lookup in a map that size is a cache miss or two.
  const byName = new Map<string, DirectoryEntry>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    byName.set(entry.name, entry);
    if (byName.size !== i + 1) {
      throw new ArchiveError("DUPLICATE_ENTRY", `zip entry '${entry.name}' appears twice`, {
        file,
        hint: "The archive is corrupt or was crafted to be read differently by different tools.",
      });
    }
    // Its local header and name alone must fit before the directory; the extra field is checked on use.
    const minimalEnd =
      entry.localHeaderOffset +
      LOCAL_HEADER_SIZE +
      DirectoryEntry.nameLength(entry) +
      entry.compressedSize;
    if (minimalEnd > directory.offset) throw outOfBounds(entry, file);
  }

  const dataStarts = new Map<ZipEntry, Promise<number>>();
  const dataStart = (entry: DirectoryEntry) => {
    let start = dataStarts.get(entry);
    if (!start) {
      start = checkLocalHeader(source, entry, DirectoryEntry.rawName(entry), directory.offset);
      dataStarts.set(entry, start);
    }
    return start;
  };

  const entrySource = (entry: ZipEntry): SliceSource => {
    if (!DirectoryEntry.isIn(entry, identity)) {
      throw new ArchiveError("UNKNOWN_ENTRY", `'${entry.name}' is not an entry of this archive`, {
        file,
      });
    }
    if (entry.method !== METHOD_STORED) {
      throw new ArchiveError(
        "COMPRESSED_ENTRY",
        `zip entry '${entry.name}' is compressed (method ${entry.method})`,
        {
          file,
          offset: entry.localHeaderOffset,
          hint: "torch.save writes entries uncompressed; this file was re-zipped. Re-save it with torch.save, or re-zip it with no compression (zip -0).",
        },
      );
    }
    return new EntrySource(source, entry, dataStart);
  };

  const readEntry = async (entry: ZipEntry): Promise<Uint8Array> => {
    const slice = entrySource(entry);
    const data = await slice.read(0, slice.size);
    const actual = crc32(data);
    if (actual !== entry.crc32) {
      throw new ArchiveError(
        "CRC_MISMATCH",
        `zip entry '${entry.name}' fails its CRC-32 check (stored ${hex(entry.crc32)}, computed ${hex(actual)})`,
        {
          file,
          offset: await slice.origin(),
          hint: "The file is corrupt: download or copy it again.",
        },
      );
    }
    return data;
  };

  return { source, entries, byName, zip64: directory.zip64, entrySource, readEntry };
}

/** Parses exactly `entryCount` central directory records, which must fill `bytes` exactly. */
function parseDirectory(
  bytes: Uint8Array,
  directoryOffset: number,
  entryCount: number,
  file: string,
  archive: object,
): DirectoryEntry[] {
  const entries: DirectoryEntry[] = [];
  // Locations for messages are built only when something is wrong: one record per tensor.
  const where = (at: number) => ({ file, offset: directoryOffset + at });
  let at = 0;
  while (entries.length < entryCount) {
    if (at + CENTRAL_HEADER_SIZE > bytes.length || u32(bytes, at) !== CENTRAL_HEADER_SIGNATURE) {
      throw new ArchiveError(
        "ENTRY_COUNT_MISMATCH",
        `zip central directory holds fewer entries than the ${entryCount} its end record announces (record ${entries.length + 1} missing)`,
        { ...where(at), hint: "The archive is truncated or corrupt." },
      );
    }
    const flags = u16(bytes, at + 8);
    const nameLength = u16(bytes, at + 28);
    const extraLength = u16(bytes, at + 30);
    const commentLength = u16(bytes, at + 32);
    const recordEnd = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    if (recordEnd > bytes.length) {
      throw new ArchiveError(
        "DIRECTORY_SIZE_MISMATCH",
        `zip central directory record ${entries.length + 1} runs past the directory's end`,
        { ...where(at), hint: "The archive is truncated or corrupt." },
      );
    }
    const nameStart = at + CENTRAL_HEADER_SIZE;
    const nameEnd = nameStart + nameLength;
    const ascii = isAscii(bytes, nameStart, nameEnd);
    // A non-ASCII name keeps a copy of its bytes, not a view that would keep the directory.
    const rawName = ascii ? undefined : bytes.slice(nameStart, nameEnd);
    const name =
      rawName === undefined
        ? asciiText(bytes, nameStart, nameEnd)
        : decodeEntryName(rawName, (flags & FLAG_UTF8) !== 0, where(at));
    if (entryNameProblem(name) !== undefined) checkEntryName(name, where(at));
    if (flags & FLAG_ENCRYPTED) {
      throw new ArchiveError("ENCRYPTED_ENTRY", `zip entry '${name}' is encrypted`, {
        ...where(at),
        hint: "loadout does not read password-protected archives: decrypt it first.",
      });
    }
    let uncompressedSize = u32(bytes, at + 24);
    let compressedSize = u32(bytes, at + 20);
    let localHeaderOffset = u32(bytes, at + 42);
    let disk = u16(bytes, at + 34);
    if (
      uncompressedSize === 0xffffffff ||
      compressedSize === 0xffffffff ||
      localHeaderOffset === 0xffffffff ||
      disk === 0xffff
    ) {
      const sizes = applyZip64(
        { uncompressedSize, compressedSize, localHeaderOffset, disk },
        bytes.subarray(nameEnd, nameEnd + extraLength),
        name,
        where(at),
      );
      ({ uncompressedSize, compressedSize, localHeaderOffset, disk } = sizes);
    }
    if (disk !== 0) {
      throw new ArchiveError("MULTI_DISK", `zip entry '${name}' starts on disk ${disk}`, {
        ...where(at),
        hint: "Multi-disk (split) archives are not supported: join the parts first.",
      });
    }
    const method = u16(bytes, at + 10);
    if (method === METHOD_STORED && compressedSize !== uncompressedSize) {
      throw new ArchiveError(
        "BAD_ENTRY_SIZE",
        `stored zip entry '${name}' has compressed size ${compressedSize} but size ${uncompressedSize}`,
        { ...where(at), hint: "The archive is corrupt." },
      );
    }
    entries.push(
      new DirectoryEntry(
        name,
        method,
        flags,
        u32(bytes, at + 16),
        compressedSize,
        uncompressedSize,
        localHeaderOffset,
        archive,
        rawName,
      ),
    );
    at = recordEnd;
  }
  if (at !== bytes.length) {
    throw new ArchiveError(
      "ENTRY_COUNT_MISMATCH",
      `zip central directory has ${bytes.length - at} bytes after the ${entryCount} entries its end record announces`,
      { file, offset: directoryOffset + at, hint: "The archive is corrupt." },
    );
  }
  return entries;
}

interface EntryFields {
  uncompressedSize: number;
  compressedSize: number;
  localHeaderOffset: number;
  disk: number;
}

/**
 * Replaces the 32-bit fields set to 0xFFFFFFFF (and the disk set to 0xFFFF) with the zip64
 * extra field's 64-bit values, which come in that fixed order and only for the fields that need
 * them. Values of 2^53 and more are refused rather than rounded.
 */
function applyZip64(
  fields: EntryFields,
  extra: Uint8Array,
  name: string,
  where: { file: string; offset: number },
): EntryFields {
  const wanted = {
    uncompressedSize: fields.uncompressedSize === 0xffffffff,
    compressedSize: fields.compressedSize === 0xffffffff,
    localHeaderOffset: fields.localHeaderOffset === 0xffffffff,
    disk: fields.disk === 0xffff,
  };
  if (
    !wanted.uncompressedSize &&
    !wanted.compressedSize &&
    !wanted.localHeaderOffset &&
    !wanted.disk
  ) {
    return fields;
  }
  const data = findExtraField(extra, ZIP64_EXTRA_ID);
  const bad = (why: string) =>
    new ArchiveError("BAD_ZIP64_EXTRA", `zip entry '${name}': ${why}`, {
      ...where,
      hint: "The archive is corrupt.",
    });
  if (!data) throw bad("sizes need a zip64 extra field but there is none");
  const result = { ...fields };
  let at = 0;
  for (const field of ["uncompressedSize", "compressedSize", "localHeaderOffset"] as const) {
    if (!wanted[field]) continue;
    if (at + 8 > data.length) throw bad("zip64 extra field is too short");
    const value = u64(data, at);
    if (value === undefined) {
      throw new ArchiveError(
        "ZIP64_TOO_LARGE",
        `zip entry '${name}' has a ${field} of 2^53 or more`,
        {
          ...where,
          hint: "No real archive is that large: the file is corrupt.",
        },
      );
    }
    result[field] = value;
    at += 8;
  }
  if (wanted.disk) {
    if (at + 4 > data.length) throw bad("zip64 extra field is too short");
    result.disk = u32(data, at);
  }
  return result;
}

/** The data of the first extra field with `id`, or undefined; the fields must tile `extra`. */
function findExtraField(extra: Uint8Array, id: number): Uint8Array | undefined {
  let at = 0;
  while (at + 4 <= extra.length) {
    const fieldId = u16(extra, at);
    const length = u16(extra, at + 2);
    if (at + 4 + length > extra.length) return undefined;
    if (fieldId === id) return extra.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
  return undefined;
}

/**
 * Reads an entry's local header and checks it agrees with the central directory (signature,
 * name, method, flags and, unless a data descriptor follows the data, CRC and sizes). Returns
 * the offset of the entry's data.
 */
async function checkLocalHeader(
  source: ByteSource,
  entry: ZipEntry,
  centralName: Uint8Array,
  directoryOffset: number,
): Promise<number> {
  const file = source.name;
  const offset = entry.localHeaderOffset;
  const mismatch = (what: string) =>
    new ArchiveError(
      "LOCAL_HEADER_MISMATCH",
      `zip entry '${entry.name}': local header ${what} disagrees with the central directory`,
      {
        file,
        offset,
        hint: "The archive is corrupt, or crafted so that tools read different contents.",
      },
    );
  const header = await source.read(offset, LOCAL_HEADER_SIZE);
  if (u32(header, 0) !== LOCAL_HEADER_SIGNATURE) throw mismatch("signature");
  const nameLength = u16(header, 26);
  const extraLength = u16(header, 28);
  const start = offset + LOCAL_HEADER_SIZE + nameLength + extraLength;
  if (start + entry.compressedSize > directoryOffset) throw outOfBounds(entry, file);
  const nameAndExtra = await source.read(offset + LOCAL_HEADER_SIZE, nameLength + extraLength);
  const name = nameAndExtra.subarray(0, nameLength);
  if (nameLength !== centralName.length || name.some((byte, i) => byte !== centralName[i])) {
    throw mismatch("name");
  }
  if (u16(header, 6) !== entry.flags) throw mismatch("flags");
  if (u16(header, 8) !== entry.method) throw mismatch("compression method");
  if (!(entry.flags & FLAG_DATA_DESCRIPTOR)) {
    if (u32(header, 14) !== entry.crc32) throw mismatch("CRC-32");
    let compressed = u32(header, 18);
    let uncompressed = u32(header, 22);
    if (compressed === 0xffffffff || uncompressed === 0xffffffff) {
      // In a local header the zip64 field holds both sizes, uncompressed first.
      const zip64 = findExtraField(nameAndExtra.subarray(nameLength), ZIP64_EXTRA_ID);
      if (!zip64 || zip64.length < 16) throw mismatch("zip64 sizes");
      uncompressed = u64(zip64, 0) ?? -1;
      compressed = u64(zip64, 8) ?? -1;
    }
    if (compressed !== entry.compressedSize || uncompressed !== entry.uncompressedSize) {
      throw mismatch("size");
    }
  }
  return start;
}

function outOfBounds(entry: ZipEntry, file: string): ArchiveError {
  return new ArchiveError(
    "ENTRY_OUT_OF_BOUNDS",
    `zip entry '${entry.name}' (${entry.compressedSize} bytes, header at ${entry.localHeaderOffset}) would extend past the start of the central directory`,
    { file, offset: entry.localHeaderOffset, hint: "The archive is truncated or corrupt." },
  );
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/**
 * One directory entry and one entry source kept for the life of the module, so that their
 * hidden classes outlive a full garbage collection: see SHAPE_KEEPERS in
 * formats/pickle/values.ts.
 */
const keptEntry = new DirectoryEntry("", METHOD_STORED, 0, 0, 0, 0, 0, {}, undefined);
export const ZIP_SHAPE_KEEPERS: readonly unknown[] = [
  keptEntry,
  new EntrySource(new MemorySource(new Uint8Array(0)), keptEntry, async () => 0),
];
