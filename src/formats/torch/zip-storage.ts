import { type ByteSource, SliceSource } from "../../io/byte-source.js";
import type { DType } from "../../tensors/dtype.js";
import type { ZipArchive } from "../zip/zip.js";
import { storagePyClass, type TorchStorage } from "./storage.js";

/** What every storage of one file with one element type shares: kept once, not per storage. */
export interface ZipStorageGroup {
  readonly archive: ZipArchive;
  /** `<folder>/data/`: a storage's key is its entry's name after this. */
  readonly prefix: string;
  readonly dtype: DType;
  readonly bigEndian: boolean;
  readonly untyped: boolean;
  /** The byte sources of the entries the group's storages have read, by entry position. */
  readonly sources: Map<number, ByteSource>;
}

/** The group of one file's storages of one element type, before any is read. */
export function zipStorageGroup(
  archive: ZipArchive,
  prefix: string,
  dtype: DType,
  bigEndian: boolean,
  untyped: boolean,
): ZipStorageGroup {
  return { archive, prefix, dtype, bigEndian, untyped, sources: new Map() };
}

/**
 * A storage in a torch zip file: the first `byteLength` bytes of the entry at `index`. A
 * 20,000-tensor checkpoint keeps one storage per tensor, so a storage holds only its entry
 * position, its byte length and its group: its key is read back from the entry's name, and its
 * byte source is made when it is first read (and kept by the group). Each field, and each key
 * string, was more for every garbage collection during the open to copy.
 */
export class ZipStorage implements TorchStorage {
  constructor(
    private readonly group: ZipStorageGroup,
    private readonly index: number,
    readonly byteLength: number,
  ) {}

  get dtype(): DType {
    return this.group.dtype;
  }

  get bigEndian(): boolean {
    return this.group.bigEndian;
  }

  get untyped(): boolean {
    return this.group.untyped;
  }

  get key(): string {
    return this.group.archive.nameAt(this.index).slice(this.group.prefix.length);
  }

  get pyClass(): string {
    return storagePyClass(this.group.untyped);
  }

  /** The bytes; throws COMPRESSED_ENTRY if the entry is not stored. */
  get source(): ByteSource {
    const { sources } = this.group;
    let whole = sources.get(this.index);
    if (whole === undefined) {
      whole = this.group.archive.sourceAt(this.index);
      sources.set(this.index, whole);
    }
    // Storages of one entry may differ in length (a key met again with another numel).
    return whole.size === this.byteLength
      ? whole
      : new SliceSource(whole, 0, this.byteLength, whole.name);
  }
}
