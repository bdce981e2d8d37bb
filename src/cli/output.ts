import { randomBytes } from "node:crypto";
import { open, readdir, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { SingleBar } from "cli-progress";
import { ConfigError, TensorError, WriteError } from "../errors.js";
import { canConvert } from "../tensors/convert.js";
import { byteLengthOf, type DType, isFloating, type TypedArray } from "../tensors/dtype.js";
import { numelOf } from "../tensors/shape.js";
import type { TensorLike } from "../tensors/tensor-like.js";
import { openAtomicFile } from "../writers/file-sink.js";
import { writeSafetensors } from "../writers/safetensors-writer.js";
import { writeShardedSafetensors } from "../writers/sharded.js";
import { resolveSize } from "../writers/size.js";
import { type ChunkedTensorLike, hasChunks } from "../writers/tensor-bytes.js";
import type { WritableValue } from "../writers/torch/python-values.js";
import { writeTorchCheckpoint } from "../writers/torch/torch-writer.js";
import { formatBytes } from "./format.js";

/**
 * What the writing commands (convert, merge) share: choosing the output format, streaming tensors
 * into a file atomically with a progress bar, sharded safetensors output with Hugging Face's
 * naming, and strict parsing of numeric options.
 */

export type OutputFormat = "safetensors" | "torch";
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["safetensors", "torch"];
/** What `--dtype` accepts: floating tensors are converted to it, others keep their dtype. */
export const OUTPUT_DTYPES = ["float32", "float16", "bfloat16"] as const;

const SAFETENSORS_SUFFIX = ".safetensors";
const INDEX_SUFFIX = ".safetensors.index.json";
const TORCH_EXTENSIONS = new Set([".pt", ".pth", ".bin", ".ckpt"]);

/** The output format: `explicit` when given, else from OUT's extension. */
export function outputFormatFor(path: string, explicit?: OutputFormat): OutputFormat {
  if (explicit !== undefined) return explicit;
  const name = basename(path).toLowerCase();
  if (name.endsWith(SAFETENSORS_SUFFIX) || name.endsWith(INDEX_SUFFIX)) return "safetensors";
  if (TORCH_EXTENSIONS.has(extname(name))) return "torch";
  throw new ConfigError("UNKNOWN_OUTPUT_FORMAT", "cannot tell the output format from its name", {
    file: path,
    hint: "Name it .safetensors (or .safetensors.index.json) or .pt/.pth/.bin/.ckpt, or pass --format safetensors|torch.",
  });
}

/** torch.save names the archive's folder after the file, without its extension. */
export function torchFolderName(path: string): string {
  const name = basename(path);
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  return stem === "" || stem === "." || stem === ".." || /[\\\0]/.test(stem) ? "archive" : stem;
}

/** The dtype a tensor is written as: `target` for floating tensors, its own for the rest. */
export function outputDType(tensor: TensorLike, target: DType | undefined, key: string): DType {
  const source = tensor.dtype;
  if (target === undefined || source === target || !isFloating(source)) return source;
  if (!canConvert(source, target)) {
    throw new TensorError("UNSUPPORTED_CONVERSION", `cannot convert ${source} to ${target}`, {
      key,
      hint: `loadout does not decode ${source}; drop --dtype, or --exclude this tensor.`,
    });
  }
  return target;
}

/** Bytes written before a progress bar is worth showing. */
const PROGRESS_MIN_BYTES = 64 << 20;

/**
 * Tensors as the writers see them: streamed chunk by chunk through Tensor.chunks() (so memory
 * holds one chunk), converted on the way, counted for the progress bar. The same input tensor
 * and dtype give the same stream object, so a writer that shares repeated tensors still does.
 */
export interface TensorStreams {
  stream(tensor: TensorLike, dtype: DType): ChunkedTensorLike;
  /** Removes the progress bar, if one was shown. */
  stop(): void;
}

export function tensorStreams(label: string): TensorStreams {
  const made = new Map<TensorLike, Map<DType, ChunkedTensorLike>>();
  let totalBytes = 0;
  let done = 0;
  let bar: SingleBar | undefined;
  const advance = (bytes: number) => {
    done += bytes;
    if (!bar && process.stderr.isTTY && totalBytes >= PROGRESS_MIN_BYTES) {
      bar = new SingleBar({
        stream: process.stderr,
        format: `${label} [{bar}] {percentage}% | {done}/{size}`,
        hideCursor: true,
      });
      bar.start(totalBytes, 0, { done: formatBytes(0), size: formatBytes(totalBytes) });
    }
    bar?.update(done, { done: formatBytes(done), size: formatBytes(totalBytes) });
  };
  return {
    stream(tensor, dtype) {
      let byDType = made.get(tensor);
      if (!byDType) {
        byDType = new Map();
        made.set(tensor, byDType);
      }
      let stream = byDType.get(dtype);
      if (!stream) {
        stream = countedStream(tensor, dtype, advance);
        byDType.set(dtype, stream);
        totalBytes += byteLengthOf(dtype, numelOf(tensor.shape)) ?? 0;
      }
      return stream;
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

function countedStream(
  tensor: TensorLike,
  dtype: DType,
  advance: (bytes: number) => void,
): ChunkedTensorLike {
  const readAs = async (target: DType): Promise<TypedArray> => {
    const values = await tensor.read(target === tensor.dtype ? {} : { dtype: target });
    advance(values.byteLength);
    return values;
  };
  return {
    dtype,
    shape: [...tensor.shape],
    read: (options = {}) => readAs(options.dtype ?? dtype),
    async *chunks(options = {}) {
      const target = options.dtype ?? dtype;
      if (!hasChunks(tensor)) {
        yield await readAs(target);
        return;
      }
      for await (const chunk of tensor.chunks(target === tensor.dtype ? {} : { dtype: target })) {
        const bytes = chunk.byteLength;
        yield chunk;
        advance(bytes);
      }
    },
  };
}

/** A missing output folder is reported as such (not as a temporary file that cannot be created). */
async function checkOutputFolder(out: string): Promise<void> {
  const folder = dirname(out);
  const info = await stat(folder).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new WriteError("NO_OUTPUT_FOLDER", "the output's folder does not exist", {
      file: folder,
      hint: "Create the folder first (loadout does not create folders).",
    });
  }
}

/** What a write produced. */
export interface WrittenOutput {
  /** Paths written, data files first, the index last. */
  files: string[];
  /** Bytes of all files written. */
  bytes: number;
  /** Files of the same base name left by an earlier run, now removed. */
  removed: string[];
}

export interface SafetensorsOutputOptions {
  /** Most data bytes per shard ("2GB"); OUT is then the base file name or the index path. */
  shardSize?: string | undefined;
  /** `__metadata__` (merged with `format: pt`); in the index when sharded. */
  metadata?: Readonly<Record<string, string>> | undefined;
}

/** huggingface_hub's default shard limit, used when OUT names an index but no --shard-size is given. */
const DEFAULT_SHARD_SIZE = "5GB";

/**
 * Writes `tensors` to OUT as safetensors, atomically. Without a shard size: one file at OUT.
 * With one (or when OUT names an index): Hugging Face's layout next to OUT,
 * `model-00001-of-0000N.safetensors`... and `model.safetensors.index.json` (or just
 * `model.safetensors` when everything fits in one shard). Either way, files of the same base name
 * left from an earlier run (other shards, an index, the single file) are removed afterwards.
 */
export async function writeSafetensorsOutput(
  out: string,
  tensors: readonly (readonly [string, TensorLike])[],
  options: SafetensorsOutputOptions = {},
): Promise<WrittenOutput> {
  const folder = dirname(out);
  const name = basename(out);
  const metadata = { format: "pt", ...options.metadata };
  const sharded = options.shardSize !== undefined || name.endsWith(INDEX_SUFFIX);
  await checkOutputFolder(out);
  if (!sharded) {
    const result = await writeSafetensors(await openAtomicFile(out), tensors, { metadata });
    const base = name.endsWith(SAFETENSORS_SUFFIX) ? name.slice(0, -SAFETENSORS_SUFFIX.length) : "";
    const removed = base ? await removeStaleFiles(folder, base, new Set([name])) : [];
    return { files: [out], bytes: result.bytes, removed };
  }
  const base = shardBaseName(out);
  const limit = resolveSize(options.shardSize ?? DEFAULT_SHARD_SIZE);
  const staged: { staging: string; final: string }[] = [];
  const tag = randomBytes(4).toString("hex");
  let bytes = 0;
  const opener = async (file: string) => {
    const staging = join(folder, `.${file}.${tag}.partial`);
    staged.push({ staging, final: join(folder, file) });
    return openAtomicFile(staging);
  };
  try {
    await writeShardedSafetensors(opener, base, tensors, {
      maxShardBytes: limit,
      // huggingface_hub keeps only `format: pt` in the shards and the rest in the index.
      metadata: options.metadata,
    });
    // From the disk: the writer does not report the index's size.
    for (const { staging } of staged) bytes += (await stat(staging)).size;
  } catch (error) {
    await Promise.all(staged.map(({ staging }) => unlink(staging).catch(() => {})));
    throw error;
  }
  await publishStaged(staged);
  const written = new Set(staged.map(({ final }) => basename(final)));
  const removed = await removeStaleFiles(folder, base, written);
  return { files: staged.map(({ final }) => final), bytes, removed };
}

/** `model` for OUT = `dir/model.safetensors` or `dir/model.safetensors.index.json`. */
function shardBaseName(out: string): string {
  const name = basename(out);
  const base = name.endsWith(INDEX_SUFFIX)
    ? name.slice(0, -INDEX_SUFFIX.length)
    : name.endsWith(SAFETENSORS_SUFFIX)
      ? name.slice(0, -SAFETENSORS_SUFFIX.length)
      : "";
  if (base === "") {
    throw new ConfigError(
      "BAD_SHARDED_OUTPUT",
      "sharded output needs a name such as model.safetensors",
      {
        file: out,
        hint: "Name OUT <base>.safetensors or <base>.safetensors.index.json: shards are named <base>-00001-of-0000N.safetensors.",
      },
    );
  }
  return base;
}

/**
 * Moves complete staged files to their names, data files first and the index last, so an index
 * never names a shard that is not in place. If a move fails, nothing of this run is left.
 */
async function publishStaged(staged: readonly { staging: string; final: string }[]): Promise<void> {
  for (const [index, { staging, final }] of staged.entries()) {
    try {
      await rename(staging, final);
    } catch (cause) {
      const leftovers = [
        ...staged.slice(0, index).map((s) => s.final),
        ...staged.slice(index).map((s) => s.staging),
      ];
      await Promise.all(leftovers.map((path) => unlink(path).catch(() => {})));
      throw new WriteError(
        "WRITE_FAILED",
        `cannot move the finished shard into place: ${(cause as Error).message}`,
        {
          file: final,
          hint: "No file of this run was kept; check the folder's permissions and that no folder has the shard's name.",
          cause,
        },
      );
    }
  }
  await syncFolder(dirname(staged[0]?.final ?? "."));
}

/** Makes the renames durable where the platform allows; a folder that cannot be synced is fine. */
async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, "r").catch(() => undefined);
  await handle?.sync().catch(() => {});
  await handle?.close().catch(() => {});
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Removes `<base>.safetensors`, `<base>-NNNNN-of-NNNNN.safetensors` and
 * `<base>.safetensors.index.json` in `folder` that are not in `keep`: what huggingface_hub's
 * save_torch_state_dict clears, so a loader never mixes an old shard or index with new files.
 */
export async function removeStaleFiles(
  folder: string,
  base: string,
  keep: ReadonlySet<string>,
): Promise<string[]> {
  const pattern = new RegExp(
    `^${escapeRegExp(base)}(?:-\\d{5,}-of-\\d{5,}\\.safetensors|\\.safetensors|\\.safetensors\\.index\\.json)$`,
  );
  const removed: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    if (!entry.isFile() || !pattern.test(entry.name) || keep.has(entry.name)) continue;
    await unlink(join(folder, entry.name));
    removed.push(join(folder, entry.name));
  }
  return removed.sort();
}

/** Writes `value` (a tree with tensors at its leaves) as a torch zip checkpoint at OUT, atomically. */
export async function writeTorchOutput(out: string, value: WritableValue): Promise<WrittenOutput> {
  await checkOutputFolder(out);
  const result = await writeTorchCheckpoint(await openAtomicFile(out), value, {
    folder: torchFolderName(out),
  });
  return { files: [out], bytes: result.bytes, removed: [] };
}

/** "out.safetensors" or "3 files: model-00001-of-00002.safetensors, ...". */
export function describeFiles(files: readonly string[]): string {
  if (files.length === 1) return files[0]!;
  const names = files.map((file) => basename(file));
  const shown = names.length <= 4 ? names : [names[0]!, "...", ...names.slice(-2)];
  return `${files.length} files in ${dirname(files[0]!)} (${shown.join(", ")})`;
}

/** A decimal number such as 0.5, 3, .25 or 1e-6: no signs, no hex, no spaces, no "Infinity". */
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A finite, non-negative number, strictly parsed; `option` names it in the error. */
export function parseNonNegative(text: string, option: string): number {
  const value = DECIMAL.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isFinite(value)) {
    throw new ConfigError(
      "BAD_NUMBER",
      `${option} ${JSON.stringify(text)} is not a non-negative number`,
      {
        hint: `Write a decimal number such as 0.5 or 1e-6 after ${option}.`,
      },
    );
  }
  return value;
}

/** Comma-separated non-negative numbers ("0.5,0.3,0.2"); an empty item is an error. */
export function parseNumberList(text: string, option: string): number[] {
  return text.split(",").map((item) => parseNonNegative(item, option));
}
