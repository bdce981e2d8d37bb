import { TensorError, WriteError } from "../../errors.js";
import { canConvert } from "../../tensors/convert.js";
import { type DType, dtypeInfo, isDType, isFloating } from "../../tensors/dtype.js";
import type { TensorLike } from "../../tensors/tensor-like.js";
import type { ByteSink } from "../sink.js";
import { ReadAhead, tensorBytes } from "../tensor-bytes.js";
import { type PickleItem, pickle } from "./pickler.js";
import type { WritableValue } from "./python-values.js";
import { serializationId } from "./serialization-id.js";
import { type DTypeChoice, tensorPickling } from "./tensor-pickling.js";
import { createZipWriter } from "./zip-writer.js";

/**
 * Writes what `torch.save(obj, f)` writes (torch 2.13, the zip format, pickle protocol 2), so
 * that `torch.load(f, weights_only=True)` loads it. Records, in torch's order:
 *   <folder>/data.pkl, .format_version ("1"), .storage_alignment ("64"), byteorder ("little"),
 *   data/0, data/1, ... (one per storage, in key order), version ("3\n"), .data/serialization_id
 * Everything is checked and the pickle built before the first byte reaches the sink; then each
 * tensor's bytes stream through (a lazy Tensor chunk by chunk), so memory stays bounded by one
 * chunk however large the checkpoint.
 */

export interface TorchCheckpointOptions {
  /** The folder every record sits in (torch uses the file's name without extension). Default "archive". */
  folder?: string;
  /** Convert every floating-point tensor to this floating dtype (float64, float32, float16 or bfloat16). */
  dtype?: DType;
}

export interface TorchCheckpointResult {
  /** Size of the file written. */
  bytes: number;
  /** Storages (distinct tensors) written. */
  storages: number;
}

/** What torch.save 2.13 writes in these records. */
const FORMAT_VERSION = "1";
const STORAGE_ALIGNMENT = "64";
const FILE_FORMAT_VERSION = "3\n";

/** Typed arrays are in the platform's byte order; torch files here say "little". */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function checkFolder(folder: unknown): asserts folder is string {
  if (
    typeof folder !== "string" ||
    folder === "" ||
    folder === "." ||
    folder === ".." ||
    /[/\\\0]/.test(folder) ||
    /[\uD800-\uDFFF]/.test(folder.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""))
  ) {
    throw new WriteError(
      "INVALID_FOLDER",
      `${JSON.stringify(folder)} cannot be a torch archive's folder`,
      {
        hint: 'Use a plain name without slashes, such as "archive" (torch uses the file name without extension).',
      },
    );
  }
}

export function checkTargetDType(target: DType | undefined): void {
  if (target === undefined) return;
  if (!isDType(target) || dtypeInfo(target).kind !== "float") {
    throw new WriteError("INVALID_DTYPE", `cannot convert floating tensors to ${String(target)}`, {
      hint: "Pass float32, float16, bfloat16 or float64.",
    });
  }
}

/** The dtype a floating tensor is written as when converting to `target`; other tensors keep theirs. */
export function convertFloating(
  tensor: TensorLike,
  path: string,
  target: DType | undefined,
): DType {
  const source = tensor.dtype;
  if (target === undefined || source === target || !isFloating(source)) return source;
  if (!canConvert(source, target)) {
    throw new TensorError("UNSUPPORTED_CONVERSION", `cannot convert ${source} to ${target}`, {
      key: path,
      hint: `loadout does not decode ${source}; write without a dtype, or leave this tensor out.`,
    });
  }
  return target;
}

/**
 * Writes `value` (a tree of dicts, lists, tuples, scalars and TensorLike leaves; see
 * python-values.ts) to `sink` as a torch checkpoint and closes the sink. Tensors that are the same
 * object are written once and load as one tensor. On any failure the sink is aborted (an atomic
 * file keeps its previous content) and the error rethrown.
 */
export async function writeTorchCheckpoint(
  sink: ByteSink,
  value: WritableValue,
  options: TorchCheckpointOptions = {},
): Promise<TorchCheckpointResult> {
  try {
    checkTargetDType(options.dtype);
    const target = options.dtype;
    return await writeTorchArchive(sink, value, {
      folder: options.folder,
      chooseDType: (tensor, path) => convertFloating(tensor, path, target),
    });
  } catch (error) {
    await sink.abort().catch(() => {});
    throw error;
  }
}

export interface ArchiveOptions {
  folder?: string | undefined;
  chooseDType: DTypeChoice;
}

/** writeTorchCheckpoint's work, with the dtype chosen per tensor; the caller aborts on failure. */
export async function writeTorchArchive(
  sink: ByteSink,
  value: PickleItem,
  options: ArchiveOptions,
): Promise<TorchCheckpointResult> {
  const folder = options.folder ?? "archive";
  checkFolder(folder);
  if (!LITTLE_ENDIAN) {
    throw new WriteError(
      "BIG_ENDIAN_PLATFORM",
      "writing torch files on a big-endian platform is not supported",
    );
  }
  const tensors = tensorPickling(options.chooseDType);
  const data = pickle(value, tensors.hooks);
  const zip = createZipWriter(sink, folder);
  const text = new TextEncoder();
  await zip.addRecord("data.pkl", data);
  await zip.addRecord(".format_version", text.encode(FORMAT_VERSION));
  await zip.addRecord(".storage_alignment", text.encode(STORAGE_ALIGNMENT));
  await zip.addRecord("byteorder", text.encode("little"));
  const storages = tensors.storages;
  const ahead = new ReadAhead(storages.length, (i) => {
    const { tensor, dtype, byteLength, path } = storages[i]!;
    return tensorBytes(tensor, dtype, byteLength, path);
  });
  for (const [index, { byteLength, key }] of storages.entries()) {
    await zip.addStreamedRecord(`data/${key}`, byteLength, ahead.stream(index));
  }
  await zip.addRecord("version", text.encode(FILE_FORMAT_VERSION));
  const written = zip.records.map(({ record, size, crc }) => ({ name: record, size, crc }));
  await zip.addRecord(".data/serialization_id", text.encode(serializationId(written)));
  const bytes = await zip.finish();
  await sink.close();
  return { bytes, storages: tensors.storages.length };
}
