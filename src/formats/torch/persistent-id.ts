import { FormatError, UnsupportedFormatError } from "../../errors.js";
import { type DType, itemSize } from "../../tensors/dtype.js";
import { PyGlobal, type PyValue } from "../pickle/values.js";
import { describe } from "./describe.js";
import { storageDType, storageKind } from "./dtypes.js";

/**
 * torch's persistent ids for storages: `('storage', storage_type, key, location, numel)` in zip
 * files, with a sixth item, the view `(view_key, offset, view_size)` or None, in legacy files.
 */
export interface StorageRef {
  key: string;
  dtype: DType;
  untyped: boolean;
  /** Elements (bytes for untyped storages). */
  numel: number;
  /** numel × item size. */
  byteLength: number;
  view?: { key: string; offset: number; size: number };
}

const decoder = new TextDecoder("latin1");

/** A key or location as Python 2 (bytes) or 3 (str) pickles it; torch's keys are str(int). */
export function asKeyString(value: PyValue | undefined): string | undefined {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/** The 'storage' or 'module' tag of a persistent id. */
export function persistentIdTag(pid: PyValue): string | undefined {
  return Array.isArray(pid) ? asKeyString(pid[0]) : undefined;
}

/**
 * Parses a storage persistent id; `withView` for the legacy layout. Refuses anything else with a
 * FormatError (or UnsupportedFormatError for quantized storages).
 */
export function parseStorageId(pid: PyValue, withView: boolean, file: string): StorageRef {
  const bad = (why: string) =>
    new FormatError("BAD_PERSISTENT_ID", `bad storage reference in the pickle: ${why}`, {
      file,
      hint: "The checkpoint is corrupt or was not written by torch.save.",
    });
  const length = withView ? 6 : 5;
  if (!Array.isArray(pid) || pid.length !== length) {
    throw bad(`expected a tuple of ${length} items, got ${describe(pid)}`);
  }
  // Indexed rather than destructured: this runs once per tensor, and a tuple is a frozen array,
  // which array destructuring walks with the generic iterator.
  const items = pid as readonly PyValue[];
  const tag = items[0]!;
  const storageType = items[1]!;
  const rawKey = items[2]!;
  const location = items[3]!;
  const numel = items[4]!;
  const view = items[5];
  if (asKeyString(tag) !== "storage") throw bad(`unknown kind ${describe(tag)}`);
  if (!(storageType instanceof PyGlobal)) throw bad(`storage type is ${describe(storageType)}`);
  const kind = storageKind(storageType.module, storageType.name);
  if (kind === undefined) throw bad(`${storageType.qualifiedName} is not a storage type`);
  if (kind.kind === "unsupported") {
    throw new UnsupportedFormatError("QUANTIZED_STORAGE", `the checkpoint holds a ${kind.what}`, {
      file,
      hint: "loadout reads dense tensors only: dequantize and re-save.",
    });
  }
  const key = asKeyString(rawKey);
  if (key === undefined) throw bad(`storage key is ${describe(rawKey)}`);
  if (asKeyString(location) === undefined) throw bad(`location is ${describe(location)}`);
  if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) {
    throw bad(`element count is ${describe(numel)}`);
  }
  const dtype = storageDType(kind);
  const byteLength = numel * itemSize(dtype);
  if (!Number.isSafeInteger(byteLength)) throw bad(`element count ${numel} is too large`);
  const ref: StorageRef = { key, dtype, untyped: kind.kind === "untyped", numel, byteLength };
  if (withView && view !== null) {
    if (!Array.isArray(view) || view.length !== 3) throw bad(`storage view is ${describe(view)}`);
    const [viewKey, offset, size] = view as PyValue[];
    const viewKeyString = asKeyString(viewKey);
    if (viewKeyString === undefined) throw bad(`view key is ${describe(viewKey)}`);
    for (const n of [offset, size]) {
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
        throw bad(`view offset/size is ${describe(n)}`);
      }
    }
    ref.view = { key: viewKeyString, offset: offset as number, size: size as number };
  }
  return ref;
}
