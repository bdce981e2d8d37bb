import { WriteError } from "../errors.js";
import type { DType } from "../tensors/dtype.js";
import {
  checkMetadata,
  layoutSafetensors,
  prepareTensors,
  type TensorEntries,
  type TensorOrder,
} from "./safetensors-layout.js";
import { type WriteProgress, writeLayout } from "./safetensors-writer.js";
import { formatShardIndex } from "./shard-index.js";
import { planShards, shardFileNames, shardIndexFileName } from "./shard-plan.js";
import type { ByteSink } from "./sink.js";
import { resolveSize } from "./size.js";

/**
 * A checkpoint split over several safetensors files plus `model.safetensors.index.json`, laid out
 * as huggingface_hub's `save_torch_state_dict` lays it out, so Hugging Face tools (and loadout's
 * reader) open it. Membership is planned from shapes and dtypes first (the file count is in every
 * name), then each shard is written in turn and the index last, so an index never names a shard
 * that was not completely written.
 */

/** Opens the named file (a plain file name, no folder) for writing, e.g. with openAtomicFile. */
export type SinkOpener = (name: string) => ByteSink | Promise<ByteSink>;

/** huggingface_hub's default `max_shard_size`. */
export const DEFAULT_MAX_SHARD_SIZE = "5GB";

export interface ShardedWriteOptions {
  /**
   * Most data bytes per shard: a number of bytes or a size string ("5GB" = 5·10^9, "1.5GiB").
   * A tensor larger than this gets a shard of its own. Default "5GB".
   */
  maxShardBytes?: number | string;
  /**
   * Metadata saved with the checkpoint: in the index next to `total_size` when there are several
   * shards, in the file's header when there is one (as huggingface_hub does).
   */
  metadata?: Readonly<Record<string, string>>;
  /**
   * Header metadata of every file. Default `{ format: "pt" }`, which huggingface_hub writes and
   * transformers checks for when it loads a safetensors file that has metadata.
   */
  fileMetadata?: Readonly<Record<string, string>>;
  /** Convert every floating tensor to this dtype (sizes are planned after conversion). */
  dtype?: DType;
  /** Order of tensors inside each file (membership always follows the given order). */
  order?: TensorOrder;
  onProgress?: (progress: ShardedProgress) => void;
}

/** Progress over the whole checkpoint (tensor counts and bytes cover every shard). */
export interface ShardedProgress extends WriteProgress {
  file: string;
  /** 0-based. */
  fileIndex: number;
  fileCount: number;
}

export interface WrittenShard {
  file: string;
  /** In file order. */
  tensors: string[];
  bytes: number;
}

export interface ShardedWriteResult {
  shards: WrittenShard[];
  /** `<baseName>.safetensors.index.json`, or undefined when everything fit in one file. */
  indexFile: string | undefined;
  /** Data bytes of all tensors (the index's `metadata.total_size`). */
  totalSize: number;
}

/**
 * Writes `tensors` as `<baseName>.safetensors` when they fit in one shard, else as
 * `<baseName>-00001-of-0000N.safetensors`... and `<baseName>.safetensors.index.json`
 * (`{"metadata": {"total_size": ...}, "weight_map": {name: file}}`).
 */
export async function writeShardedSafetensors(
  open: SinkOpener,
  baseName: string,
  tensors: TensorEntries,
  options: ShardedWriteOptions = {},
): Promise<ShardedWriteResult> {
  checkBaseName(baseName);
  const limit = resolveSize(options.maxShardBytes ?? DEFAULT_MAX_SHARD_SIZE);
  const metadata = checkMetadata(options.metadata) ?? [];
  if (metadata.some(([key]) => key === "total_size")) {
    throw new WriteError("INVALID_METADATA", 'metadata cannot set "total_size"', {
      hint: "loadout computes total_size itself; rename the key.",
    });
  }
  const prepared = prepareTensors(tensors, options.dtype);
  const byName = new Map(prepared.map((t) => [t.name, t]));
  const groups = planShards(prepared, limit);
  const files = shardFileNames(baseName, groups.length);
  const sharded = groups.length > 1;
  const fileMetadata = options.fileMetadata ?? { format: "pt" };
  // Every header is encoded (and checked) before the first file is opened.
  const layouts = groups.map((names) =>
    layoutSafetensors(
      names.map((name) => byName.get(name)!),
      {
        metadata: sharded ? fileMetadata : { ...fileMetadata, ...options.metadata },
        order: options.order,
      },
    ),
  );
  const totalSize = prepared.reduce((sum, t) => sum + t.byteLength, 0);

  const tensorCount = prepared.length;
  const totalBytes = layouts.reduce((sum, layout) => sum + layout.totalBytes, 0);
  let bytesBefore = 0;
  let tensorsBefore = 0;
  for (const [fileIndex, layout] of layouts.entries()) {
    const file = files[fileIndex]!;
    const onProgress = options.onProgress;
    const progress =
      onProgress &&
      ((p: WriteProgress) =>
        onProgress({
          file,
          fileIndex,
          fileCount: files.length,
          tensor: p.tensor,
          tensorsWritten: tensorsBefore + p.tensorsWritten,
          tensorCount,
          bytesWritten: bytesBefore + p.bytesWritten,
          totalBytes,
        }));
    await writeFile(open, file, (sink) => writeLayout(sink, layout, progress));
    bytesBefore += layout.totalBytes;
    tensorsBefore += layout.tensors.length;
  }

  const shards = layouts.map((layout, i) => ({
    file: files[i]!,
    tensors: layout.tensors.map((t) => t.name),
    bytes: layout.totalBytes,
  }));
  if (!sharded) return { shards, indexFile: undefined, totalSize };

  const indexFile = shardIndexFileName(baseName);
  const text = formatShardIndex({
    totalSize,
    metadata,
    weightMap: groups.flatMap((names, i) =>
      names.map((name): [string, string] => [name, files[i]!]),
    ),
  });
  const bytes = new TextEncoder().encode(text);
  await writeFile(open, indexFile, (sink) => sink.write(bytes));
  return { shards, indexFile, totalSize };
}

/** Opens `name`, fills it, closes it; aborts it on any failure. */
async function writeFile(
  open: SinkOpener,
  name: string,
  fill: (sink: ByteSink) => Promise<void>,
): Promise<void> {
  const sink = await open(name);
  try {
    await fill(sink);
    await sink.close();
  } catch (error) {
    await sink.abort().catch(() => {});
    throw error;
  }
}

/** The base name becomes part of plain file names next to each other: no folders in it. */
function checkBaseName(baseName: string): void {
  if (
    typeof baseName !== "string" ||
    baseName === "" ||
    baseName === "." ||
    baseName === ".." ||
    /[/\\\0]/.test(baseName)
  ) {
    throw new WriteError(
      "INVALID_FILE_NAME",
      `base name ${JSON.stringify(baseName)} is not a plain file name`,
      { hint: 'Pass a name such as "model"; the opener decides the folder.' },
    );
  }
}
