import { type ByteSource, SliceSource } from "../../io/byte-source.js";
import { Tensor } from "../../tensors/tensor.js";
import type { FormatOptions, OpenedFormat } from "../types.js";
import {
  decodeHeaderJson,
  LENGTH_PREFIX_BYTES,
  readHeaderLength,
  type SafetensorsHeader,
} from "./header.js";

/**
 * Opens a safetensors file by reading only its length prefix and header: each tensor is a view
 * of its own slice of the data section, read when asked. Nothing in the file is executed.
 */
export async function openSafetensors(
  source: ByteSource,
  _options: FormatOptions = {},
): Promise<OpenedFormat> {
  const header = await readSafetensorsHeader(source);
  return {
    format: "safetensors",
    root: tensorsOf(source, header),
    opaqueClasses: new Set(),
    metadata: header.metadata,
    details: { headerBytes: header.headerLength, tensors: header.tensors.length },
    ownedSources: [],
  };
}

/** Reads and checks the header of `source` (8 + n bytes, n checked before it is read). */
export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsHeader> {
  // Too small for a length: let the header rules name the problem without reading.
  const first =
    source.size < LENGTH_PREFIX_BYTES
      ? new Uint8Array(0)
      : await source.read(0, LENGTH_PREFIX_BYTES);
  const n = readHeaderLength(first, source.size, source.name);
  const json = await source.read(LENGTH_PREFIX_BYTES, n);
  return decodeHeaderJson(json, source.size, source.name);
}

/** One Tensor per header entry, in header order, each over the slice its data_offsets name. */
export function tensorsOf(source: ByteSource, header: SafetensorsHeader): Map<string, Tensor> {
  const root = new Map<string, Tensor>();
  for (const entry of header.tensors) {
    const [begin, end] = entry.dataOffsets;
    const slice = new SliceSource(
      source,
      header.dataStart + begin,
      end - begin,
      `${source.name}:${entry.name}`,
    );
    root.set(
      entry.name,
      new Tensor({
        storage: { source: slice, dtype: entry.dtype, bigEndian: false },
        shape: entry.shape,
        key: entry.name,
      }),
    );
  }
  return root;
}
