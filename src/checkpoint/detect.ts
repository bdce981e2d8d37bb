import { UnsupportedFormatError } from "../errors.js";
import { looksLikeSafetensors, looksLikeShardIndex } from "../formats/safetensors/detect.js";
import { isLegacyTar, isTorchLegacy } from "../formats/torch/detect.js";

/** Bytes read from the start of a file to recognise its format. */
export const SNIFF_BYTES = 4096;

export type DetectedKind =
  | "torch-zip"
  | "torch-legacy"
  | "legacy-tar"
  | "safetensors"
  | "safetensors-index"
  | "pickle"
  | "unknown";

/** Opcodes a protocol 0/1 pickle can start with: the containers and globals a dump begins with. */
const PICKLE_0_1_FIRST = new Set(
  ["(", "]", "}", ")", "c", "N", "I", "L", "F", "S", "V", "X", "U", "T", "K", "J", "M", "G"].map(
    (c) => c.charCodeAt(0),
  ),
);

const startsWith = (bytes: Uint8Array, magic: number[]) => magic.every((b, i) => bytes[i] === b);

/** Recognises a checkpoint by its first bytes, never by its name. */
export function detectFormat(first: Uint8Array, size: number): DetectedKind {
  if (startsWith(first, [0x50, 0x4b, 0x03, 0x04]) || startsWith(first, [0x50, 0x4b, 0x05, 0x06])) {
    return "torch-zip";
  }
  if (isLegacyTar(first)) return "legacy-tar";
  if (looksLikeSafetensors(first, size)) return "safetensors";
  if (looksLikeShardIndex(first)) return "safetensors-index";
  if (isTorchLegacy(first)) return "torch-legacy";
  if (first[0] === 0x80 || (first[0] !== undefined && PICKLE_0_1_FIRST.has(first[0])))
    return "pickle";
  return "unknown";
}

const KNOWN_OTHER_FORMATS: { magic: number[]; what: string }[] = [
  { magic: [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59], what: "a numpy .npy array file" },
  { magic: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], what: "a 7-Zip archive" },
  { magic: [0x1f, 0x8b], what: "a gzip-compressed file (decompress it first)" },
  { magic: [0x89, 0x48, 0x44, 0x46], what: "an HDF5 file (Keras .h5?)" },
  { magic: [0x89, 0x50, 0x4e, 0x47], what: "a PNG image" },
  { magic: [0x08], what: "possibly a protobuf (ONNX / TensorFlow) file" },
];

/** Names what a file that is not a checkpoint seems to be, when its magic says so. */
export function describeForeignFile(first: Uint8Array): string | undefined {
  return KNOWN_OTHER_FORMATS.find(({ magic }) => startsWith(first, magic))?.what;
}

export function unsupported(file: string, first: Uint8Array): UnsupportedFormatError {
  const what = describeForeignFile(first);
  return new UnsupportedFormatError(
    "UNSUPPORTED_FORMAT",
    what ? `not a checkpoint: this looks like ${what}` : "not a recognised checkpoint format",
    {
      file,
      hint: "loadout reads PyTorch (zip or legacy) files, safetensors files and sharded safetensors index files.",
    },
  );
}
