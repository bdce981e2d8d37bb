import { ArchiveError, LimitExceededError } from "../../errors.js";
import { type ByteSource, MemorySource, SliceSource } from "../../io/byte-source.js";
import {
  CENTRAL_HEADER_SIGNATURE,
  CENTRAL_HEADER_SIZE,
  FLAG_DATA_DESCRIPTOR,
  LOCAL_HEADER_SIGNATURE,
  LOCAL_HEADER_SIZE,
  METHOD_STORED,
  ZIP64_EXTRA_ID,
} from "./constants.js";
import { crc32 } from "./crc32.js";
import {
  type CentralDirectory,
  entryName,
  entryOutOfBounds,
  findExtraField,
  nameHas,
  parseCentralDirectory,
  rawEntryName,
} from "./directory.js";
import { locateDirectory } from "./end-record.js";
import { u16, u32, u64 } from "./little-endian.js";

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

/**
 * An opened archive. Opening reads the central directory and checks every record, but makes no
 * object per entry: entries and names are made when asked for, each time (a torch checkpoint
 * has an entry per tensor, and opening it asks for each storage's entry by name, once).
 */
export interface ZipArchive {
  readonly source: ByteSource;
  readonly zip64: boolean;
  readonly entryCount: number;
  /** Every entry, in central directory order. */
  readonly entries: readonly ZipEntry[];
  /** The name of the entry at `index` in central directory order. */
  nameAt(index: number): string;
  /** The entry at `index` in central directory order. */
  entryAt(index: number): ZipEntry;
  /** Whether the name of the entry at `index` starts with `prefix`, without making the name. */
  nameStartsWith(index: number, prefix: string): boolean;
  /** Whether the name of the entry at `index` ends with `suffix`, without making the name. */
  nameEndsWith(index: number, suffix: string): boolean;
  /**
   * The entry named exactly `prefix + name`, or undefined. With a prefix, the name is looked up
   * without joining the two into a new string (for lookups made once per tensor).
   */
  find(name: string, prefix?: string): ZipEntry | undefined;
  /** The index of the entry `find` would return, or -1: for lookups that then need only its size and bytes. */
  indexOf(name: string, prefix?: string): number;
  /** indexOf(String(number), prefix) for a non-negative integer, such as a torch storage key. */
  indexOfNumbered(number: number, prefix: string): number;
  /**
   * Readies indexOfNumbered for names under `prefix` now rather than on its first call: for a
   * caller that looks up every name under it, once per file, before its first lookup.
   */
  indexNumbered(prefix: string): void;
  /**
   * The size of the entry at `index` if it is stored (not compressed), or the COMPRESSED_ENTRY
   * error sourceAt would throw: for storages whose sources are made later, one per tensor.
   */
  storedSizeAt(index: number): number | ArchiveError;
  /**
   * The entry's bytes, read lazily: the local header is read and checked against the central
   * directory on first use. Throws COMPRESSED_ENTRY for entries that are not stored.
   */
  entrySource(entry: ZipEntry): SliceSource;
  /** entrySource of the entry at `index`. */
  sourceAt(index: number): SliceSource;
  /** The whole entry in memory with its CRC-32 verified: for small records such as data.pkl. */
  readEntry(entry: ZipEntry): Promise<Uint8Array>;
}

/**
 * A ZipEntry made from the directory's columns, which knows where it came from. Not frozen
 * (Object.freeze is a call into the runtime, and a torch open makes an entry per tensor): the
 * archive reads its own columns, never these fields, so changing one changes nothing read.
 */
class DirectoryEntry implements ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
  readonly #directory: CentralDirectory;
  readonly #index: number;

  /** `name` when the caller already has it (a lookup by name), to save decoding it again. */
  constructor(directory: CentralDirectory, index: number, name = entryName(directory, index)) {
    this.name = name;
    this.method = directory.method[index]!;
    this.flags = directory.flags[index]!;
    this.crc32 = directory.crc32[index]!;
    this.compressedSize = directory.compressedSize[index]!;
    this.uncompressedSize = directory.uncompressedSize[index]!;
    this.localHeaderOffset = directory.localHeaderOffset[index]!;
    this.#directory = directory;
    this.#index = index;
  }

  /** The entry's position in `directory`, or -1 when it comes from another archive (or elsewhere). */
  static indexIn(entry: ZipEntry, directory: CentralDirectory): number {
    return entry instanceof DirectoryEntry && entry.#directory === directory ? entry.#index : -1;
  }
}

/**
 * An entry's bytes: a window of the archive starting after the entry's local header, which is
 * read and checked on first use. It holds the directory and its position there, nothing made
 * per entry: a torch checkpoint keeps one per tensor. Its name (`file.pt:archive/data/0`) is
 * made when first asked for.
 */
class EntrySource extends SliceSource {
  #name: string | undefined;

  constructor(
    private readonly archive: Archive,
    private readonly index: number,
  ) {
    super(archive.source, undefined, archive.sizeAt(index), "");
  }

  override get name(): string {
    this.#name ??= `${this.parent.name}:${this.archive.nameAt(this.index)}`;
    return this.#name;
  }

  protected override resolveStart(): Promise<number> {
    return this.archive.dataStart(this.index);
  }
}

/** Opens a zip archive by reading its end records and central directory (never the entries). */
export async function readZipArchive(source: ByteSource): Promise<ZipArchive> {
  const file = source.name;
  const location = await locateDirectory(source);
  if (location.offset + location.size > location.endRecordsStart) {
    throw new ArchiveError(
      "DIRECTORY_OUT_OF_FILE",
      `zip central directory (${location.size} bytes at offset ${location.offset}) runs past its end record at ${location.endRecordsStart}`,
      { file, offset: location.offset, hint: "The archive is truncated or corrupt." },
    );
  }
  if (location.offset + location.size !== location.endRecordsStart) {
    throw new ArchiveError(
      "DIRECTORY_SIZE_MISMATCH",
      `zip central directory ends at ${location.offset + location.size} but its end record starts at ${location.endRecordsStart}`,
      { file, offset: location.offset, hint: "The archive is corrupt (or has data prepended)." },
    );
  }
  if (location.size > MAX_DIRECTORY_BYTES) {
    throw new LimitExceededError(
      "ZIP_DIRECTORY_TOO_LARGE",
      `zip central directory of ${location.size} bytes is over the ${MAX_DIRECTORY_BYTES}-byte limit`,
      {
        file,
        offset: location.offset,
        hint: "No checkpoint has that many files: the archive is corrupt or crafted.",
      },
    );
  }
  const bytes = await source.read(location.offset, location.size);
  const directory = parseCentralDirectory(bytes, location.offset, location.entryCount, file);
  return new Archive(source, directory, location.offset, location.zip64);
}

/**
 * The ZipArchive readZipArchive returns. A class rather than closures made per archive, so that
 * the optimized code of its methods, which a torch open calls once per tensor, outlives each
 * archive.
 */
class Archive implements ZipArchive {
  private readonly dataStarts = new Map<number, Promise<number>>();

  constructor(
    readonly source: ByteSource,
    private readonly directory: CentralDirectory,
    private readonly directoryOffset: number,
    readonly zip64: boolean,
  ) {}

  get entryCount(): number {
    return this.directory.count;
  }

  get entries(): readonly ZipEntry[] {
    return Array.from({ length: this.directory.count }, (_, index) => this.entryAt(index));
  }

  nameAt(index: number): string {
    this.checkIndex(index);
    return entryName(this.directory, index);
  }

  entryAt(index: number): ZipEntry {
    this.checkIndex(index);
    return new DirectoryEntry(this.directory, index);
  }

  nameStartsWith(index: number, prefix: string): boolean {
    this.checkIndex(index);
    return nameHas(this.directory, index, prefix, false);
  }

  nameEndsWith(index: number, suffix: string): boolean {
    this.checkIndex(index);
    return nameHas(this.directory, index, suffix, true);
  }

  find(name: string, prefix?: string): ZipEntry | undefined {
    const index = this.indexOf(name, prefix);
    if (index < 0) return undefined;
    return new DirectoryEntry(this.directory, index, prefix === undefined ? name : prefix + name);
  }

  indexOf(name: string, prefix?: string): number {
    return this.directory.names.find(name, prefix);
  }

  indexOfNumbered(number: number, prefix: string): number {
    return this.directory.names.findNumbered(number, prefix);
  }

  indexNumbered(prefix: string): void {
    this.directory.names.indexNumbered(prefix);
  }

  /** The uncompressed size of the entry at `index`. */
  sizeAt(index: number): number {
    this.checkIndex(index);
    return this.directory.uncompressedSize[index]!;
  }

  storedSizeAt(index: number): number | ArchiveError {
    this.checkIndex(index);
    return this.compressedError(index) ?? this.directory.uncompressedSize[index]!;
  }

  entrySource(entry: ZipEntry): SliceSource {
    const index = DirectoryEntry.indexIn(entry, this.directory);
    if (index < 0) {
      throw new ArchiveError("UNKNOWN_ENTRY", `'${entry.name}' is not an entry of this archive`, {
        file: this.source.name,
      });
    }
    return this.sourceAt(index);
  }

  sourceAt(index: number): SliceSource {
    this.checkIndex(index);
    const refused = this.compressedError(index);
    if (refused) throw refused;
    return new EntrySource(this, index);
  }

  /** COMPRESSED_ENTRY for an entry that is not stored: loadout reads entries in place. */
  private compressedError(index: number): ArchiveError | undefined {
    const method = this.directory.method[index]!;
    if (method === METHOD_STORED) return undefined;
    return new ArchiveError(
      "COMPRESSED_ENTRY",
      `zip entry '${this.nameAt(index)}' is compressed (method ${method})`,
      {
        file: this.source.name,
        offset: this.directory.localHeaderOffset[index]!,
        hint: "torch.save writes entries uncompressed; this file was re-zipped. Re-save it with torch.save, or re-zip it with no compression (zip -0).",
      },
    );
  }

  async readEntry(entry: ZipEntry): Promise<Uint8Array> {
    const slice = this.entrySource(entry);
    const data = await slice.read(0, slice.size);
    const actual = crc32(data);
    const index = DirectoryEntry.indexIn(entry, this.directory);
    const stored = this.directory.crc32[index]!;
    if (actual !== stored) {
      throw new ArchiveError(
        "CRC_MISMATCH",
        `zip entry '${this.nameAt(index)}' fails its CRC-32 check (stored ${hex(stored)}, computed ${hex(actual)})`,
        {
          file: this.source.name,
          offset: await slice.origin(),
          hint: "The file is corrupt: download or copy it again.",
        },
      );
    }
    return data;
  }

  /** Where entry `index`'s data starts, its local header checked (once). */
  dataStart(index: number): Promise<number> {
    let start = this.dataStarts.get(index);
    if (!start) {
      start = checkLocalHeader(this.source, this.directory, index, this.directoryOffset);
      this.dataStarts.set(index, start);
    }
    return start;
  }

  /** Called several times per tensor at open: the check stays small, the message is made apart. */
  private checkIndex(index: number): void {
    if (!(index >= 0 && index < this.directory.count && Number.isInteger(index))) {
      throw noEntry(index, this.directory.count);
    }
  }
}

function noEntry(index: number, count: number): RangeError {
  return new RangeError(`no entry ${index} in an archive of ${count} entries`);
}

/**
 * Reads entry `index`'s local header and checks it agrees with the central directory (signature,
 * name, method, flags and, unless a data descriptor follows the data, CRC and sizes). Returns
 * the offset of the entry's data.
 */
async function checkLocalHeader(
  source: ByteSource,
  directory: CentralDirectory,
  index: number,
  directoryOffset: number,
): Promise<number> {
  const file = source.name;
  const offset = directory.localHeaderOffset[index]!;
  const flags = directory.flags[index]!;
  const compressedSize = directory.compressedSize[index]!;
  const mismatch = (what: string) =>
    new ArchiveError(
      "LOCAL_HEADER_MISMATCH",
      `zip entry '${entryName(directory, index)}': local header ${what} disagrees with the central directory`,
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
  if (start + compressedSize > directoryOffset) throw entryOutOfBounds(directory, index, file);
  const nameAndExtra = await source.read(offset + LOCAL_HEADER_SIZE, nameLength + extraLength);
  const name = nameAndExtra.subarray(0, nameLength);
  const centralName = rawEntryName(directory, index);
  if (nameLength !== centralName.length || name.some((byte, i) => byte !== centralName[i])) {
    throw mismatch("name");
  }
  if (u16(header, 6) !== flags) throw mismatch("flags");
  if (u16(header, 8) !== directory.method[index]) throw mismatch("compression method");
  if (!(flags & FLAG_DATA_DESCRIPTOR)) {
    if (u32(header, 14) !== directory.crc32[index]) throw mismatch("CRC-32");
    let compressed = u32(header, 18);
    let uncompressed = u32(header, 22);
    if (compressed === 0xffffffff || uncompressed === 0xffffffff) {
      // In a local header the zip64 field holds both sizes, uncompressed first.
      const zip64 = findExtraField(nameAndExtra.subarray(nameLength), ZIP64_EXTRA_ID);
      if (!zip64 || zip64.length < 16) throw mismatch("zip64 sizes");
      uncompressed = u64(zip64, 0) ?? -1;
      compressed = u64(zip64, 8) ?? -1;
    }
    if (compressed !== compressedSize || uncompressed !== directory.uncompressedSize[index]) {
      throw mismatch("size");
    }
  }
  return start;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/**
 * One of each object an open makes per archive or per entry, kept for the life of the module so
 * that their hidden classes outlive a full garbage collection: see SHAPE_KEEPERS in
 * formats/pickle/values.ts. Two of each, over sources of two classes: a field that has held
 * objects of two classes is generalized, and the class of an object whose fields are general is
 * the one that real archives (over a file, over a slice) then share. Kept with a field typed for
 * one class only, real objects moved to a new class that lived only as long as they did. Each
 * archive holds one empty stored entry named `k`, looked up by prefix and rest as torch does.
 */
export const ZIP_SHAPE_KEEPERS: readonly {
  archive: ZipArchive;
  entry: ZipEntry;
  source: SliceSource;
}[] = (() => {
  const record = new Uint8Array(CENTRAL_HEADER_SIZE + 1);
  new DataView(record.buffer).setUint32(0, CENTRAL_HEADER_SIGNATURE, true);
  record[28] = 1;
  record[CENTRAL_HEADER_SIZE] = 0x6b;
  const bytes = new MemorySource(new Uint8Array(LOCAL_HEADER_SIZE + 1), "");
  return [bytes, new SliceSource(bytes, 0, bytes.size, "")].map((source) => {
    const directory = parseCentralDirectory(record, LOCAL_HEADER_SIZE + 1, 1, "");
    const archive = new Archive(source, directory, LOCAL_HEADER_SIZE + 1, false);
    const entry = archive.find("k", "")!;
    return { archive, entry, source: archive.entrySource(entry) };
  });
})();
