import { FormatError, UnsupportedFormatError } from "../../errors.js";
import type { ByteSource } from "../../io/byte-source.js";
import { type DType, itemSize } from "../../tensors/dtype.js";
import { Tensor } from "../../tensors/tensor.js";
import { DECIMAL_INDEX_LIMIT, decimalIndex } from "../decimal-index.js";
import { LazyMap } from "../lazy-map.js";
import type { PersistentLoader } from "../pickle/types.js";
import { unpickle } from "../pickle/unpickler.js";
import type { PyGlobal, PyValue } from "../pickle/values.js";
import type { FormatOptions, OpenedFormat } from "../types.js";
import { readZipArchive, ZIP_SHAPE_KEEPERS, type ZipArchive, type ZipEntry } from "../zip/zip.js";
import { type StorageKind, storageDType, storageKind } from "./dtypes.js";
import { MAX_PICKLE_BYTES, MAX_TEXT_RECORD_BYTES, pickleTooLarge } from "./limits.js";
import { parseStorageId } from "./persistent-id.js";
import { resolveTorchGlobal } from "./rebuild.js";
import type { TorchStorage } from "./storage.js";
import { StorageKeyMap } from "./storage-keys.js";
import { RebuildTensorShortcut, type StorageFinder } from "./tensor-shortcut.js";
import { ZipStorage, type ZipStorageGroup, zipStorageGroup } from "./zip-storage.js";

/**
 * torch.save's zip format (torch >= 1.6): `<folder>/data.pkl` holds the object, each storage is
 * the stored entry `<folder>/data/<key>`, and small records say the byte order and versions.
 * Opening reads the zip directory, those records and data.pkl; storages are read when used.
 */

/** Records torch writes for itself, shown in `details` rather than in `records`. */
const FORMAT_RECORDS = new Set([
  "data.pkl",
  "byteorder",
  "version",
  ".format_version",
  ".storage_alignment",
]);

export async function openTorchZip(
  source: ByteSource,
  options: FormatOptions = {},
): Promise<OpenedFormat> {
  const file = source.name;
  const archive = await readZipArchive(source);
  const { pickleEntry, folder } = findPickle(archive, file);
  const inFolder = (name: string) => archive.find(`${folder}/${name}`);
  refuseTorchScript(archive, folder, file);

  const readText = async (name: string) => {
    const entry = inFolder(name);
    if (!entry) return undefined;
    if (entry.uncompressedSize > MAX_TEXT_RECORD_BYTES) {
      throw new FormatError(
        "BAD_RECORD",
        `record ${entry.name} is ${entry.uncompressedSize} bytes; torch writes a few`,
        { file, hint: "The checkpoint is corrupt or was not written by torch.save." },
      );
    }
    return new TextDecoder().decode(await archive.readEntry(entry)).trim();
  };
  const byteOrder = (await readText("byteorder")) ?? "little";
  if (byteOrder !== "little" && byteOrder !== "big") {
    throw new FormatError("BAD_BYTEORDER", `byteorder record says '${byteOrder.slice(0, 20)}'`, {
      file,
      hint: "It must be 'little' or 'big'; the checkpoint is corrupt.",
    });
  }
  const details: Record<string, string | number | boolean> = { folder, byteOrder };
  for (const [record, key] of [
    [".format_version", "formatVersion"],
    [".storage_alignment", "storageAlignment"],
    ["version", "version"],
  ] as const) {
    const text = await readText(record);
    if (text !== undefined) details[key] = /^\d{1,15}$/.test(text) ? Number(text) : text;
  }

  if (pickleEntry.uncompressedSize > MAX_PICKLE_BYTES) {
    throw pickleTooLarge(file, pickleEntry.uncompressedSize, pickleEntry.name);
  }
  const pickle = await archive.readEntry(pickleEntry);
  const persistentLoad = new ZipStorageLoader(archive, folder, byteOrder === "big", file);
  const result = unpickle(pickle, {
    file,
    baseOffset: await archive.entrySource(pickleEntry).origin(),
    resolveGlobal: resolveTorchGlobal,
    persistentLoad,
    shortcut: new RebuildTensorShortcut(persistentLoad),
    strict: options.strict,
    allowGlobals: options.allowGlobals,
    limits: options.limits,
  });
  if (pickle[0] === 0x80 && pickle[1] !== undefined) details.protocol = pickle[1];

  return {
    format: "torch-zip",
    root: result.value,
    opaqueClasses: result.opaqueClasses,
    records: new LazyMap(() => otherRecords(archive, folder)),
    details,
    ownedSources: [],
  };
}

/**
 * The one `<folder>/data.pkl` at depth one (torch accepts any folder name). Names are compared
 * in the directory's bytes, and made only for entries that end in `/data.pkl`: an archive holds
 * one storage entry per tensor.
 */
function findPickle(archive: ZipArchive, file: string): { pickleEntry: ZipEntry; folder: string } {
  const suffix = "/data.pkl";
  const candidates: number[] = [];
  for (let index = 0; index < archive.entryCount; index++) {
    if (!archive.nameEndsWith(index, suffix)) continue;
    const name = archive.nameAt(index);
    if (name.length > suffix.length && name.indexOf("/") === name.length - suffix.length) {
      candidates.push(index);
    }
  }
  if (candidates.length === 1) {
    const pickleEntry = archive.entryAt(candidates[0]!);
    return { pickleEntry, folder: pickleEntry.name.slice(0, -suffix.length) };
  }
  if (candidates.length === 0) {
    throw new FormatError(
      "NO_DATA_PKL",
      "zip archive has no <folder>/data.pkl: not a torch.save file",
      {
        file,
        hint: "loadout reads zip files written by torch.save.",
      },
    );
  }
  throw new FormatError(
    "AMBIGUOUS_DATA_PKL",
    `zip archive has ${candidates.length} data.pkl files (${candidates
      .slice(0, 3)
      .map((index) => archive.nameAt(index))
      .join(", ")})`,
    { file, hint: "A torch.save file has exactly one; this archive is not one." },
  );
}

/** torch.jit.save archives have data.pkl too, but their objects are TorchScript code. */
function refuseTorchScript(archive: ZipArchive, folder: string, file: string): void {
  if (archive.find(`${folder}/constants.pkl`)) {
    throw new UnsupportedFormatError(
      "TORCHSCRIPT_ARCHIVE",
      "this is a TorchScript archive (torch.jit.save)",
      {
        file,
        hint: "Load it with torch.jit.load, then torch.save its state_dict().",
      },
    );
  }
}

/**
 * persistent_load for zip files: `('storage', storage_type, key, location, numel)` → the lazy
 * entry `<folder>/data/<key>`. The same key, dtype and length give the same storage object
 * (shared storage stays shared); the location is ignored (loadout reads to the CPU).
 */
export class ZipStorageLoader implements PersistentLoader, StorageFinder {
  // Keyed by the storage key alone; a key seen again with another dtype or length (rare) is
  // kept in `variants`.
  private readonly storages: StorageKeyMap<ZipStorage>;
  private readonly variants = new Map<string, ZipStorage>();
  private readonly storagePrefix: string;
  /** One group per element type (and untypedness); the last one used is tried first. */
  private readonly groups: ZipStorageGroup[] = [];
  private lastGroup: ZipStorageGroup;
  // The storage class of the last tensor and what it says: one class serves most tensors.
  private lastStorageType: PyGlobal | undefined = undefined;
  private lastStorageKind: StorageKind | undefined = undefined;

  constructor(
    private readonly archive: ZipArchive,
    folder: string,
    private readonly bigEndian: boolean,
    private readonly file: string,
  ) {
    this.storages = new StorageKeyMap(archive.entryCount);
    this.storagePrefix = `${folder}/data/`;
    // Here, once per file, not in the first of the lookups made once per tensor (see indexNumbered).
    archive.indexNumbered(this.storagePrefix);
    this.lastGroup = this.newGroup("float32", false);
  }

  load(pid: PyValue): PyValue {
    const ref = parseStorageId(pid, false, this.file);
    // A key written as str(n) goes in as the number, as the tensor shortcut passes it: then the
    // hot code below it meets numbers only.
    const number = decimalIndex(ref.key, DECIMAL_INDEX_LIMIT);
    const key = number >= 0 ? number : ref.key;
    const found = this.storage(key, ref.dtype, ref.untyped, ref.numel);
    if (found instanceof FormatError) throw found;
    return found;
  }

  /** The same for the tensor shortcut, which has read the id's parts itself; undefined where load would throw. */
  storageFor(storageType: PyGlobal, key: string | number, numel: number): TorchStorage | undefined {
    if (storageType !== this.lastStorageType) {
      this.lastStorageType = storageType;
      this.lastStorageKind = storageKind(storageType.module, storageType.name);
    }
    const kind = this.lastStorageKind;
    if (kind === undefined || kind.kind === "unsupported") return undefined;
    // Checked here as parseStorageId checks it, without building a StorageRef per tensor.
    const dtype = storageDType(kind);
    if (!Number.isSafeInteger(numel * itemSize(dtype))) return undefined;
    const found = this.storage(key, dtype, kind.kind === "untyped", numel);
    return found instanceof FormatError ? undefined : found;
  }

  /**
   * The lazy storage of `numel` elements of `dtype` under `key` (the same object as before for
   * the same key, dtype and length), or why there is none. Its byte length is a safe integer.
   * A numeric key stands for its decimal text, as the shortcut reads torch's keys "0", "1"...
   */
  private storage(
    key: string | number,
    dtype: DType,
    untyped: boolean,
    numel: number,
  ): ZipStorage | FormatError {
    const byteLength = numel * itemSize(dtype);
    const first = this.storages.get(key);
    if (first && first.dtype === dtype && first.byteLength === byteLength) return first;
    const variantKey = first && `${key}\u0000${dtype}\u0000${byteLength}`;
    if (variantKey) {
      const known = this.variants.get(variantKey);
      if (known) return known;
    }
    const { archive } = this;
    const index =
      typeof key === "number"
        ? archive.indexOfNumbered(key, this.storagePrefix)
        : archive.indexOf(key, this.storagePrefix);
    if (index < 0) {
      return new FormatError(
        "MISSING_STORAGE",
        `the pickle refers to storage '${key}' but there is no ${this.storagePrefix}${key}`,
        { file: this.file, hint: "The checkpoint is incomplete or corrupt." },
      );
    }
    // A compressed entry is refused now, though its source is made on first read.
    const size = archive.storedSizeAt(index);
    if (typeof size !== "number") return size;
    if (size < byteLength) {
      return new FormatError(
        "STORAGE_TOO_SMALL",
        `storage '${key}' holds ${size} bytes but ${numel} elements of ${dtype} need ${byteLength}`,
        { file: this.file, hint: "The checkpoint is truncated or corrupt." },
      );
    }
    const storage = new ZipStorage(this.group(dtype, untyped), index, byteLength);
    if (variantKey) this.variants.set(variantKey, storage);
    else this.storages.set(key, storage);
    return storage;
  }

  /** The group of this file's storages of `dtype`, made on first use. */
  private group(dtype: DType, untyped: boolean): ZipStorageGroup {
    const last = this.lastGroup;
    if (last.dtype === dtype && last.untyped === untyped) return last;
    this.lastGroup =
      this.groups.find((g) => g.dtype === dtype && g.untyped === untyped) ??
      this.newGroup(dtype, untyped);
    return this.lastGroup;
  }

  private newGroup(dtype: DType, untyped: boolean): ZipStorageGroup {
    const group = zipStorageGroup(this.archive, this.storagePrefix, dtype, this.bigEndian, untyped);
    this.groups.push(group);
    return group;
  }
}

/**
 * One loader kept for the life of the module, so that its hidden class (and the unpickler's
 * code that inlined its `load`) outlives a full garbage collection: see SHAPE_KEEPERS in
 * formats/pickle/values.ts.
 */
export const STORAGE_LOADER_SHAPE_KEEPER = new ZipStorageLoader(
  ZIP_SHAPE_KEEPERS[0]!.archive,
  "",
  false,
  "",
);

/**
 * Kept likewise: a shortcut and a tensor over a zip storage, for the code that inlined their
 * methods.
 */
export const TENSOR_SHORTCUT_SHAPE_KEEPERS: readonly object[] = [
  new RebuildTensorShortcut(STORAGE_LOADER_SHAPE_KEEPER),
  new Tensor({
    storage: new ZipStorage(
      zipStorageGroup(ZIP_SHAPE_KEEPERS[0]!.archive, "", "float32", false, false),
      0,
      0,
    ),
    shape: [0],
  }),
];

/** Every entry of the folder that is not torch's own: extra files saved alongside (lazy). */
function otherRecords(archive: ZipArchive, folder: string): ReadonlyMap<string, ByteSource> {
  const records = new Map<string, ByteSource>();
  const prefix = `${folder}/`;
  // Storages, and torch's own hidden records.
  const dataPrefix = `${prefix}data/`;
  const dotDataPrefix = `${prefix}.data/`;
  for (let index = 0; index < archive.entryCount; index++) {
    // Storages first: nearly every entry is one.
    if (
      archive.nameStartsWith(index, dataPrefix) ||
      archive.nameStartsWith(index, dotDataPrefix) ||
      !archive.nameStartsWith(index, prefix)
    ) {
      continue;
    }
    const entry = archive.entryAt(index);
    if (entry.name.endsWith("/")) continue;
    const name = entry.name.slice(prefix.length);
    if (FORMAT_RECORDS.has(name)) continue;
    records.set(name, archive.entrySource(entry));
  }
  return records;
}
