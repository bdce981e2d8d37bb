import { SafetensorsError, UnsupportedFormatError } from "../errors.js";
import { openSafetensors } from "../formats/safetensors/safetensors.js";
import { openShardedSafetensors } from "../formats/safetensors/sharded.js";
import { openPickle } from "../formats/torch/pickle-file.js";
import { openTorchLegacy, refuseLegacyTar } from "../formats/torch/torch-legacy.js";
import { openTorchZip } from "../formats/torch/torch-zip.js";
import type { FormatOptions, OpenedFormat } from "../formats/types.js";
import type { ByteSource } from "../io/byte-source.js";
import { Checkpoint } from "./checkpoint.js";
import { describeForeignFile, detectFormat, SNIFF_BYTES, unsupported } from "./detect.js";

export type OpenOptions = FormatOptions;

/**
 * Opens a checkpoint from any byte source, recognising its format by content. Reads the index
 * (zip directory, pickle, safetensors header), never the tensors.
 */
export async function openCheckpoint(
  source: ByteSource,
  options: OpenOptions = {},
): Promise<Checkpoint> {
  const first = await source.read(0, Math.min(SNIFF_BYTES, source.size));
  const opened = await openDetected(source, first, options);
  return new Checkpoint(source, opened);
}

async function openDetected(
  source: ByteSource,
  first: Uint8Array,
  options: OpenOptions,
): Promise<OpenedFormat> {
  switch (detectFormat(first, source.size)) {
    case "torch-zip":
      return openTorchZip(source, options);
    case "torch-legacy":
      return openTorchLegacy(source, options);
    case "legacy-tar":
      return refuseLegacyTar(source);
    case "safetensors":
      return openSafetensors(source, options);
    case "safetensors-index":
      return openShardedSafetensors(source, options);
    case "pickle":
      return openPickle(source, options);
    case "unknown":
      return openUnknown(source, first, options);
  }
}

/**
 * safetensors is the one format without a magic number, so a file nothing else recognises is
 * checked against its rules: a broken safetensors file then gets the rule it breaks.
 */
async function openUnknown(
  source: ByteSource,
  first: Uint8Array,
  options: OpenOptions,
): Promise<OpenedFormat> {
  if (describeForeignFile(first)) throw unsupported(source.name, first);
  try {
    return await openSafetensors(source, options);
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    if (source.name.endsWith(".safetensors")) throw error;
    throw new UnsupportedFormatError(
      "UNSUPPORTED_FORMAT",
      `not a recognised checkpoint format (not a zip or pickle; as safetensors: ${error.what})`,
      { file: source.name, hint: unsupported(source.name, first).hint, cause: error },
    );
  }
}
