import { FormatError, SafetensorsError, UnsupportedFormatError } from "../../errors.js";
import type { ByteSource } from "../../io/byte-source.js";
import type { Tensor } from "../../tensors/tensor.js";
import { type JsonValue, parseExactJson } from "../json/exact-json.js";
import { pointerSegments } from "../json/pointer.js";
import { stringifyJson } from "../json/stringify-json.js";
import type { FormatOptions, OpenedFormat } from "../types.js";
import { MAX_HEADER_SIZE } from "./header.js";
import { readSafetensorsHeader, tensorsOf } from "./safetensors.js";

/**
 * A sharded safetensors checkpoint: `model.safetensors.index.json` maps each tensor name to the
 * shard file holding it ({"metadata": {...}, "weight_map": {name: file}}). Each shard is opened
 * once, and the index and the shards must agree exactly: every listed tensor is in its shard,
 * every shard tensor is listed under that shard.
 */

interface Shard {
  source: ByteSource;
  tensors: ReadonlyMap<string, Tensor>;
  metadata: Readonly<Record<string, string>>;
}

/** Largest index file read whole (the same bound as a safetensors header). */
export const MAX_INDEX_BYTES = MAX_HEADER_SIZE;

export interface ShardIndex {
  /** Tensor name → shard file name, in index order. */
  weightMap: Map<string, string>;
  /** The index's own metadata, values as text. */
  metadata: Map<string, string>;
}

/**
 * Opens a `*.safetensors.index.json`: parses it exactly, opens each distinct shard once through
 * `options.openRelative` (reading only its header) and returns the tensors in weight_map order.
 */
export async function openShardedSafetensors(
  indexSource: ByteSource,
  options: FormatOptions = {},
): Promise<OpenedFormat> {
  const file = indexSource.name;
  const openRelative = options.openRelative;
  if (openRelative === undefined) {
    throw new UnsupportedFormatError(
      "OpenRelativeRequired",
      "a sharded safetensors index needs a way to open its shard files",
      {
        file,
        hint: "Open it with loadout's Node entry point, or pass options.openRelative.",
      },
    );
  }
  const index = parseShardIndex(await readIndexText(indexSource), file);

  const shardNames = [...new Set(index.weightMap.values())];
  for (const name of shardNames) checkShardName(name, file);

  const shards = new Map<string, Shard>();
  try {
    for (const name of shardNames) shards.set(name, await openShard(await openRelative(name)));
    return {
      format: "safetensors-sharded",
      root: assemble(index.weightMap, shards, file),
      opaqueClasses: new Set(),
      metadata: mergeMetadata(index.metadata, shards),
      details: { shards: shards.size, tensors: index.weightMap.size },
      ownedSources: [...shards.values()].map((shard) => shard.source),
    };
  } catch (error) {
    await Promise.allSettled([...shards.values()].map((shard) => shard.source.close()));
    throw error;
  }
}

/** Reads a shard's header, closing its source if it is not a valid safetensors file. */
async function openShard(source: ByteSource): Promise<Shard> {
  try {
    const header = await readSafetensorsHeader(source);
    return { source, tensors: tensorsOf(source, header), metadata: header.metadata ?? {} };
  } catch (error) {
    await source.close().catch(() => {});
    throw error;
  }
}

const INDEX_HINT =
  'A shard index is JSON: {"metadata": {...}, "weight_map": {tensor: shard file}}.';

function indexError(what: string, file: string, key?: string, offset?: number): SafetensorsError {
  return new SafetensorsError("InvalidShardIndex", what, { file, key, offset, hint: INDEX_HINT });
}

async function readIndexText(source: ByteSource): Promise<string> {
  if (source.size > MAX_INDEX_BYTES) {
    throw new SafetensorsError(
      "ShardIndexTooLarge",
      `index file of ${source.size} bytes exceeds the limit of ${MAX_INDEX_BYTES}`,
      { file: source.name, hint: "Real shard indexes are a few megabytes at most." },
    );
  }
  const bytes = await source.read(0, source.size);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw indexError("index file is not valid UTF-8", source.name);
  }
}

/** Parses and checks the index's JSON: a weight_map of strings, an optional metadata object. */
export function parseShardIndex(text: string, file: string): ShardIndex {
  let root: JsonValue;
  try {
    root = parseExactJson(text, { file });
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    const path = pointerSegments(error.key ?? "");
    if (error.code === "JSON_DUPLICATE_KEY" && path.length === 2 && path[0] === "weight_map") {
      throw new SafetensorsError(
        "DuplicateTensorName",
        `tensor ${JSON.stringify(path[1])} appears twice in the weight_map`,
        { file, key: path[1], offset: error.offset, hint: INDEX_HINT, cause: error },
      );
    }
    throw new SafetensorsError("InvalidShardIndex", `invalid JSON in index: ${error.what}`, {
      file,
      key: error.key || undefined,
      offset: error.offset,
      hint: INDEX_HINT,
      cause: error,
    });
  }
  if (!(root instanceof Map)) throw indexError("index is not a JSON object", file);

  const map = root.get("weight_map");
  if (!(map instanceof Map)) {
    throw indexError('index has no "weight_map" object of tensor name → shard file', file);
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of map) {
    if (typeof shard !== "string") {
      throw indexError("weight_map value must be a shard file name (a string)", file, name);
    }
    weightMap.set(name, shard);
  }

  const metadata = new Map<string, string>();
  const rawMetadata = root.get("metadata");
  if (rawMetadata instanceof Map) {
    // Non-string values (total_size) become their JSON text, as Python's str() of an int reads.
    for (const [key, value] of rawMetadata) {
      metadata.set(key, typeof value === "string" ? value : stringifyJson(value));
    }
  } else if (rawMetadata !== undefined && rawMetadata !== null) {
    throw indexError('index "metadata" must be an object', file, "metadata");
  }
  return { weightMap, metadata };
}

/**
 * Refuses shard names that could leave the index's folder or mean different files on different
 * systems. The caller's openRelative checks containment too; this is the format's own rule.
 */
export function checkShardName(name: string, file: string): void {
  let problem: string | undefined;
  if (name === "") problem = "is empty";
  else if (name.includes("\0")) problem = "contains a NUL character";
  else if (name.includes("\\")) problem = "contains a backslash";
  else if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) problem = "is an absolute path";
  else if (name.split("/").includes("..")) problem = "contains a '..' segment";
  if (problem !== undefined) {
    throw new SafetensorsError(
      "UnsafeShardName",
      `shard file name ${JSON.stringify(name)} ${problem}`,
      { file, hint: "Shards must be plain relative paths inside the index's folder." },
    );
  }
}

/** The tensors in weight_map order, after checking index and shards agree both ways. */
function assemble(
  weightMap: ReadonlyMap<string, string>,
  shards: ReadonlyMap<string, Shard>,
  file: string,
): Map<string, Tensor> {
  const root = new Map<string, Tensor>();
  for (const [name, shard] of weightMap) {
    const tensor = shards.get(shard)!.tensors.get(name);
    if (tensor === undefined) {
      throw new SafetensorsError(
        "TensorNotFound",
        `the index puts tensor ${JSON.stringify(name)} in shard ${JSON.stringify(shard)}, which does not have it`,
        { file: shards.get(shard)!.source.name, key: name, hint: `The index ${file} is stale.` },
      );
    }
    root.set(name, tensor);
  }
  for (const [shard, { source, tensors }] of shards) {
    for (const name of tensors.keys()) {
      const listed = weightMap.get(name);
      if (listed === shard) continue;
      throw new SafetensorsError(
        "UnlistedTensor",
        listed === undefined
          ? `shard holds tensor ${JSON.stringify(name)}, which the index does not list`
          : `shard holds tensor ${JSON.stringify(name)}, which the index puts in ${JSON.stringify(listed)}`,
        { file: source.name, key: name, hint: `The index ${file} is stale.` },
      );
    }
  }
  return root;
}

/**
 * Shard metadata (first shard to name a key wins; shards normally agree), then the index's own
 * metadata over it.
 */
function mergeMetadata(
  indexMetadata: ReadonlyMap<string, string>,
  shards: ReadonlyMap<string, Shard>,
): Readonly<Record<string, string>> {
  const merged = new Map<string, string>();
  for (const shard of shards.values()) {
    for (const [key, value] of Object.entries(shard.metadata)) {
      if (!merged.has(key)) merged.set(key, value);
    }
  }
  for (const [key, value] of indexMetadata) merged.set(key, value);
  return Object.freeze(Object.fromEntries(merged));
}
