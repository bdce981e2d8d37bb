/**
 * Which tensors go in which shard, decided from sizes alone before anything is written, exactly
 * as huggingface_hub's `split_state_dict_into_shards_factory` decides it: tensors are taken in
 * order and added to the current shard until the next one would take it over the limit; a tensor
 * larger than the limit gets a shard of its own at once (so it may come before the shard being
 * filled). No packing is attempted: sizes [6, 6, 2, 6, 2, 2] under 10 give [6], [6, 2], [6, 2, 2].
 */

export interface SizedName {
  name: string;
  /** Data bytes the tensor takes in the file. */
  byteLength: number;
}

/** The names in each shard, in shard order. No tensors gives one empty shard. */
export function planShards(tensors: readonly SizedName[], maxShardBytes: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  for (const { name, byteLength } of tensors) {
    if (byteLength > maxShardBytes) {
      shards.push([name]);
      continue;
    }
    if (currentBytes + byteLength > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += byteLength;
  }
  // huggingface_hub writes nothing at all for no tensors; one empty file is still a checkpoint.
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/**
 * Hugging Face's file names: `model.safetensors` for a single file, else
 * `model-00001-of-00003.safetensors`, ... (at least five digits, as Python's `{:05d}`).
 */
export function shardFileNames(baseName: string, count: number): string[] {
  if (count === 1) return [`${baseName}.safetensors`];
  const digits = (n: number) => String(n).padStart(5, "0");
  return Array.from(
    { length: count },
    (_, i) => `${baseName}-${digits(i + 1)}-of-${digits(count)}.safetensors`,
  );
}

/** `model.safetensors.index.json`. */
export function shardIndexFileName(baseName: string): string {
  return `${baseName}.safetensors.index.json`;
}
