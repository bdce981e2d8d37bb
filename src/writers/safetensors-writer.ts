import {
  type LayoutOptions,
  planSafetensors,
  type SafetensorsLayout,
  type TensorEntries,
} from "./safetensors-layout.js";
import type { ByteSink } from "./sink.js";
import { ReadAhead, tensorBytes } from "./tensor-bytes.js";

/** Writes safetensors files, one tensor at a time, never holding more than one chunk of data. */

export interface WriteProgress {
  /** The tensor being written. */
  tensor: string;
  /** Tensors finished so far. */
  tensorsWritten: number;
  tensorCount: number;
  /** Bytes handed to the sink so far, header included. */
  bytesWritten: number;
  totalBytes: number;
}

export interface SafetensorsWriteOptions extends LayoutOptions {
  /** Called after the header and after every chunk of data. */
  onProgress?: (progress: WriteProgress) => void;
}

export interface SafetensorsWriteResult {
  /** Size of the file written. */
  bytes: number;
  /** Number of tensors in it. */
  tensors: number;
}

/**
 * Writes `tensors` to `sink` as a safetensors file and closes the sink. Everything is checked
 * before the first byte is written; on any failure the sink is aborted (an atomic file keeps its
 * previous content) and the error rethrown.
 */
export async function writeSafetensors(
  sink: ByteSink,
  tensors: TensorEntries,
  options: SafetensorsWriteOptions = {},
): Promise<SafetensorsWriteResult> {
  try {
    const layout = planSafetensors(tensors, options);
    await writeLayout(sink, layout, options.onProgress);
    await sink.close();
    return { bytes: layout.totalBytes, tensors: layout.tensors.length };
  } catch (error) {
    await sink.abort().catch(() => {});
    throw error;
  }
}

/**
 * Streams a planned file into `sink` without closing it: the header, then each tensor's bytes,
 * each chunk written (and awaited) before the next chunk of that tensor is read; the next
 * tensor's first chunk is read meanwhile (ReadAhead).
 */
export async function writeLayout(
  sink: ByteSink,
  layout: SafetensorsLayout,
  onProgress?: (progress: WriteProgress) => void,
): Promise<void> {
  const tensorCount = layout.tensors.length;
  const totalBytes = layout.totalBytes;
  await sink.write(layout.header);
  let bytesWritten = layout.header.byteLength;
  onProgress?.({ tensor: "", tensorsWritten: 0, tensorCount, bytesWritten, totalBytes });
  const tensors = layout.tensors;
  const ahead = new ReadAhead(tensors.length, (i) => {
    const t = tensors[i]!;
    return tensorBytes(t.tensor, t.dtype, t.byteLength, t.name);
  });
  for (const [index, t] of tensors.entries()) {
    for await (const bytes of ahead.stream(index)) {
      await sink.write(bytes);
      bytesWritten += bytes.byteLength;
      onProgress?.({
        tensor: t.name,
        tensorsWritten: index,
        tensorCount,
        bytesWritten,
        totalBytes,
      });
    }
    onProgress?.({
      tensor: t.name,
      tensorsWritten: index + 1,
      tensorCount,
      bytesWritten,
      totalBytes,
    });
  }
}
