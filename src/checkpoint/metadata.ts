import { FormatError, LimitExceededError } from "../errors.js";
import type { ByteSource } from "../io/byte-source.js";

/**
 * JSON records frameworks append inside a torch zip, by file name: anemoi's `anemoi.json` and
 * the older `ai-models.json` (anemoi-utils finds them by base name, wherever they sit).
 */
const METADATA_NAMES = ["anemoi.json", "ai-models.json"];

/** Metadata JSON larger than this is refused rather than parsed. */
const MAX_METADATA_BYTES = 64 << 20;

export interface JsonRecord {
  /** Record name relative to the archive folder. */
  name: string;
  value: unknown;
}

/** Parses the framework metadata records of a zip checkpoint (JSON.parse is iterative in V8). */
export async function readJsonMetadata(
  records: ReadonlyMap<string, ByteSource>,
): Promise<JsonRecord[]> {
  const found: JsonRecord[] = [];
  for (const [name, source] of records) {
    if (!METADATA_NAMES.includes(name.slice(name.lastIndexOf("/") + 1))) continue;
    if (source.size > MAX_METADATA_BYTES) {
      throw new LimitExceededError("maxMetadataBytes", `metadata record of ${source.size} bytes`, {
        file: source.name,
        hint: `Records over ${MAX_METADATA_BYTES} bytes are not parsed.`,
      });
    }
    const text = new TextDecoder().decode(await source.read(0, source.size));
    try {
      found.push({ name, value: JSON.parse(text) });
    } catch (error) {
      throw new FormatError(
        "BAD_METADATA_JSON",
        `metadata record is not valid JSON (${(error as Error).message})`,
        {
          file: source.name,
        },
      );
    }
  }
  return found;
}
