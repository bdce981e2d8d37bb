/**
 * The text of `model.safetensors.index.json` exactly as huggingface_hub's
 * `save_torch_state_dict` writes it with Python's `json.dump(index, f, indent=2)`:
 * two-space indentation, `": "` after keys, every character outside printable ASCII escaped as
 * `\uXXXX` (ensure_ascii), no newline at the end.
 */

export interface ShardIndexContent {
  /** `total_size` first (data bytes of all tensors), then the caller's metadata. */
  totalSize: number;
  metadata: readonly [string, string][];
  /** Tensor name → shard file, in shard order. */
  weightMap: readonly [string, string][];
}

export function formatShardIndex({ totalSize, metadata, weightMap }: ShardIndexContent): string {
  const metadataMembers = [
    `"total_size": ${totalSize}`,
    ...metadata.map(([key, value]) => `${pythonJsonString(key)}: ${pythonJsonString(value)}`),
  ];
  const weightMembers = weightMap.map(
    ([name, file]) => `${pythonJsonString(name)}: ${pythonJsonString(file)}`,
  );
  return [
    "{",
    `  "metadata": ${objectBody(metadataMembers, "  ")},`,
    `  "weight_map": ${objectBody(weightMembers, "  ")}`,
    "}",
  ].join("\n");
}

/** Members of a nested object at `indent`, as json.dumps lays them out ("{}" when empty). */
function objectBody(members: readonly string[], indent: string): string {
  if (members.length === 0) return "{}";
  const inner = `${indent}  `;
  return `{\n${inner}${members.join(`,\n${inner}`)}\n${indent}}`;
}

const SHORT_ESCAPES: Readonly<Record<number, string>> = {
  34: '\\"',
  92: "\\\\",
  10: "\\n",
  13: "\\r",
  9: "\\t",
  8: "\\b",
  12: "\\f",
};

/** Python's `json.dumps(text)` with ensure_ascii: UTF-16 units outside ' '..'~' become \uXXXX. */
export function pythonJsonString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    const short = SHORT_ESCAPES[unit];
    if (short !== undefined) out += short;
    else if (unit >= 0x20 && unit <= 0x7e) out += text[i];
    else out += `\\u${unit.toString(16).padStart(4, "0")}`;
  }
  return `${out}"`;
}
