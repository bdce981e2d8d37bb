import { open } from "node:fs/promises";

/**
 * The ceiling every reader is compared with: positional reads of exactly the byte ranges the
 * tensors occupy, with one FileHandle, into buffers allocated beforehand. No parsing, no checks,
 * no conversion: what reading the same bytes costs on this machine.
 */

/**
 * Where each tensor's bytes lie in its file: { offset, length } per tensor, in the given order.
 * Uses the offset of the tensor's storage slice in the file, as the reader resolved it; the
 * values every contender reads are checked afterwards, so a wrong range cannot go unnoticed.
 */
export async function tensorRanges(tensors) {
  const ranges = [];
  for (const tensor of tensors) {
    if (!tensor.isContiguous) throw new Error(`${tensor.key}: not contiguous`);
    await tensor.checkReadable();
    const origin = await tensor.storage.source.origin?.();
    if (origin === undefined) throw new Error(`${tensor.key}: storage is not a slice of the file`);
    const itemBytes = tensor.byteLength / tensor.numel;
    ranges.push({ offset: origin + tensor.storageOffset * itemBytes, length: tensor.byteLength });
  }
  return ranges;
}

/** Reads `ranges` of the file at `path` into `destinations` (Uint8Arrays, one per range), in order. */
export async function plainRead(path, ranges, destinations) {
  const handle = await open(path, "r");
  try {
    return await plainReadWith(handle, ranges, destinations);
  } finally {
    await handle.close();
  }
}

/** The same with a handle already open (so that opening is not timed). Returns the bytes read. */
export async function plainReadWith(handle, ranges, destinations, onEach) {
  let total = 0;
  for (let i = 0; i < ranges.length; i++) {
    const { offset, length } = ranges[i];
    const destination = destinations[i];
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(destination, done, length - done, offset + done);
      if (bytesRead === 0) throw new Error(`unexpected end of file at ${offset + done}`);
      done += bytesRead;
    }
    total += length;
    onEach?.();
  }
  return total;
}
