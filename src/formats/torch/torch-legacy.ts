import { FormatError, UnsupportedFormatError } from "../../errors.js";
import { type ByteSource, SliceSource } from "../../io/byte-source.js";
import { itemSize } from "../../tensors/dtype.js";
import type { UnpickleOptions } from "../pickle/types.js";
import type { PyValue } from "../pickle/values.js";
import type { FormatOptions, OpenedFormat } from "../types.js";
import { describe } from "./describe.js";
import { asKeyString, parseStorageId, persistentIdTag } from "./persistent-id.js";
import { pickleStream } from "./pickle-stream.js";
import { resolveTorchGlobal } from "./rebuild.js";
import { makeTorchStorage, type TorchStorage } from "./storage.js";

export { isLegacyTar, isTorchLegacy } from "./detect.js";

/**
 * torch's legacy format (torch 0.1.10-1.5, and `_use_new_zipfile_serialization=False`): five
 * pickles one after another (magic number, protocol version 1001, sys_info, the object, the list
 * of storage keys), then for each key in that order an int64 element count and the raw bytes.
 *
 * torch writes storage bytes little-endian whatever the machine (and torch.load ignores
 * sys_info), so storages are read little-endian; only the count header of files from old
 * big-endian writers may be big-endian, which is accepted when sys_info says so.
 */

const MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;
/** Headers of consecutive storages closer together than this are read with one read. */
const HEADER_WINDOW = 256 << 10;

/** A storage the pickle names by its root key; where its bytes start is found after the pickles. */
interface RootStorage {
  storage: TorchStorage;
  numel: number;
  byteLength: number;
  /** Set once the storage key list is read. */
  place: { dataStart?: number };
}

export async function openTorchLegacy(
  source: ByteSource,
  options: FormatOptions = {},
): Promise<OpenedFormat> {
  const file = source.name;
  const stream = pickleStream(source);
  const plain = (): UnpickleOptions => ({ file, limits: options.limits });

  const magic = await stream.at(0, plain);
  if (magic.value !== MAGIC_NUMBER) {
    throw new FormatError("BAD_MAGIC", "not a torch legacy file: wrong magic number", {
      file,
      offset: 0,
      hint: "The file is corrupt, or not a torch.save file.",
    });
  }
  const protocol = await stream.at(magic.next, plain);
  if (protocol.value !== PROTOCOL_VERSION) {
    throw new FormatError(
      "BAD_PROTOCOL_VERSION",
      `torch legacy protocol version is ${describe(protocol.value)}, expected ${PROTOCOL_VERSION}`,
      { file, offset: protocol.start },
    );
  }
  const sysInfo = await stream.at(protocol.next, plain);
  const littleEndian = sysInfoFlag(sysInfo.value, "little_endian");

  let roots = new Map<string, RootStorage>();
  const main = await stream.at(sysInfo.next, () => {
    // A retry with a longer window unpickles again from scratch.
    roots = new Map();
    return {
      file,
      resolveGlobal: resolveTorchGlobal,
      persistentLoad: { load: storageLoader(source, roots) },
      strict: options.strict,
      allowGlobals: options.allowGlobals,
      limits: options.limits,
    };
  });
  const keysPickle = await stream.at(main.next, plain);
  const keys = storageKeys(keysPickle.value, file, keysPickle.start);
  await locateStorages(source, roots, keys, littleEndian, keysPickle.next);

  return {
    format: "torch-legacy",
    root: main.value,
    opaqueClasses: main.opaqueClasses,
    details: {
      protocolVersion: PROTOCOL_VERSION,
      writerByteOrder: littleEndian === false ? "big" : "little",
      storages: keys.length,
    },
    ownedSources: [],
  };
}

/** Refuses the pre-2017 tar layout (torch < 0.1.10), which torch itself only reads unsafely. */
export function refuseLegacyTar(source: ByteSource): never {
  throw new UnsupportedFormatError("LEGACY_TAR", "unsupported legacy tar format (torch < 0.1.10)", {
    file: source.name,
    hint: "Load it and re-save it with torch 1.x.",
  });
}

function sysInfoFlag(value: PyValue, name: string): boolean | undefined {
  if (!(value instanceof Map)) return undefined;
  const flag = value.get(name);
  return typeof flag === "boolean" ? flag : undefined;
}

/**
 * persistent_load for legacy files. `('storage', type, root_key, location, numel, view)` → the
 * root storage (lazy: its offset is known only once the pickles are read), or a slice of it for a
 * torch 0.3 storage view `(view_key, offset, size)`. `('module', cls, file, source)` → `cls`.
 */
function storageLoader(
  source: ByteSource,
  roots: Map<string, RootStorage>,
): (pid: PyValue) => PyValue {
  const file = source.name;
  const views = new Map<string, TorchStorage>();
  return (pid) => {
    if (persistentIdTag(pid) === "module" && Array.isArray(pid) && pid.length === 4) {
      // A module class saved with its source code (torch.save of a whole nn.Module): inert.
      return pid[1]!;
    }
    const ref = parseStorageId(pid, true, file);
    let root = roots.get(ref.key);
    if (!root) {
      const place: RootStorage["place"] = {};
      const bytes = new SliceSource(
        source,
        async () => {
          if (place.dataStart === undefined) throw missingStorage(ref.key, file);
          return place.dataStart;
        },
        ref.byteLength,
        `${file}:storage ${ref.key}`,
      );
      const storage = makeTorchStorage({
        source: bytes,
        dtype: ref.dtype,
        bigEndian: false,
        untyped: ref.untyped,
        key: ref.key,
      });
      root = { storage, numel: ref.numel, byteLength: ref.byteLength, place };
      roots.set(ref.key, root);
    }
    if (!ref.view) return root.storage;
    const known = views.get(ref.view.key);
    if (known) return known;
    const { offset, size } = ref.view;
    if (offset + size > root.numel) {
      throw new FormatError(
        "BAD_STORAGE_VIEW",
        `storage view '${ref.view.key}' covers elements ${offset}-${offset + size} of storage '${ref.key}', which has ${root.numel}`,
        { file, hint: "The checkpoint is corrupt." },
      );
    }
    const width = itemSize(root.storage.dtype);
    const view = makeTorchStorage({
      source: new SliceSource(
        root.storage.source,
        offset * width,
        size * width,
        `${file}:storage ${ref.key}[${offset}:${offset + size}]`,
      ),
      dtype: root.storage.dtype,
      bigEndian: false,
      untyped: root.storage.untyped,
      key: ref.view.key,
    });
    views.set(ref.view.key, view);
    return view;
  };
}

function storageKeys(value: PyValue, file: string, offset: number): string[] {
  if (!Array.isArray(value)) {
    throw new FormatError("BAD_STORAGE_KEYS", `storage key list is ${describe(value)}`, {
      file,
      offset,
      hint: "The checkpoint is corrupt.",
    });
  }
  return value.map((key: PyValue) => {
    const text = asKeyString(key);
    if (text === undefined) {
      throw new FormatError("BAD_STORAGE_KEYS", `storage key ${describe(key)} is not a string`, {
        file,
        offset,
      });
    }
    return text;
  });
}

/**
 * Lays the storages out after the pickles in key order (each: 8-byte count, then its bytes),
 * checking the whole layout against the file size before reading, then checks each count.
 * Headers close together are read through one window; a large storage's header alone.
 */
async function locateStorages(
  source: ByteSource,
  roots: Map<string, RootStorage>,
  keys: readonly string[],
  littleEndian: boolean | undefined,
  dataSectionStart: number,
): Promise<void> {
  const file = source.name;
  const layout: { key: string; root: RootStorage; header: number }[] = [];
  let at = dataSectionStart;
  for (const key of keys) {
    const root = roots.get(key);
    if (!root) {
      throw new FormatError(
        "UNKNOWN_STORAGE_KEY",
        `storage key list names '${key}', which the pickle never uses`,
        { file, hint: "The checkpoint is corrupt." },
      );
    }
    if (root.place.dataStart !== undefined) {
      throw new FormatError("DUPLICATE_STORAGE_KEY", `storage key '${key}' is listed twice`, {
        file,
        hint: "The checkpoint is corrupt.",
      });
    }
    root.place.dataStart = at + 8;
    layout.push({ key, root, header: at });
    at += 8 + root.byteLength;
    if (at > source.size) {
      throw new FormatError(
        "STORAGE_OUT_OF_FILE",
        `storage '${key}' (${root.byteLength} bytes at offset ${at - root.byteLength}) runs past the end of the file (${source.size} bytes)`,
        { file, offset: at - root.byteLength, hint: "The file is truncated." },
      );
    }
  }
  for (const [key, root] of roots) {
    if (root.place.dataStart === undefined) throw missingStorage(key, file);
  }

  for (let first = 0; first < layout.length; ) {
    // Extend the window over following headers while it stays small.
    const start = layout[first]!.header;
    let last = first;
    while (last + 1 < layout.length && layout[last + 1]!.header + 8 - start <= HEADER_WINDOW)
      last++;
    const window = await source.read(start, layout[last]!.header + 8 - start);
    const view = new DataView(window.buffer, window.byteOffset, window.byteLength);
    for (let i = first; i <= last; i++) {
      const { key, root, header } = layout[i]!;
      const little = view.getBigInt64(header - start, true);
      const big = view.getBigInt64(header - start, false);
      const expected = BigInt(root.numel);
      if (little === expected || (littleEndian === false && big === expected)) continue;
      throw new FormatError(
        "STORAGE_SIZE_MISMATCH",
        `storage '${key}' is recorded with ${little} elements but the pickle says ${root.numel}`,
        { file, offset: header, hint: "The checkpoint is corrupt." },
      );
    }
    first = last + 1;
  }
}

function missingStorage(key: string, file: string): FormatError {
  return new FormatError(
    "MISSING_STORAGE",
    `the pickle refers to storage '${key}', which the storage key list does not include`,
    { file, hint: "The checkpoint is incomplete or corrupt." },
  );
}
