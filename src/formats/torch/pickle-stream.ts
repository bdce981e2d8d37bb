import { PickleError } from "../../errors.js";
import type { ByteSource } from "../../io/byte-source.js";
import type { UnpickleOptions, UnpickleResult } from "../pickle/types.js";
import { unpickle } from "../pickle/unpickler.js";
import { MAX_PICKLE_BYTES, pickleTooLarge } from "./limits.js";

/** Bytes first given to the unpickler; doubled each time the pickle turns out longer. */
const INITIAL_WINDOW = 64 << 10;

/**
 * Reads pickles that follow one another in a file (torch's legacy format writes several)
 * without knowing their lengths: each is unpickled from a window that starts at 64 KiB and
 * doubles, up to the end of the file (and at most 1 GiB), while the unpickler reports TRUNCATED. Bytes already
 * read are kept, so each byte of the file is read once.
 */
export interface PickleStream {
  /**
   * Unpickles the pickle at `offset`. `options` is called for each attempt, so that state a
   * persistentLoad builds up can start afresh when a longer window is needed.
   */
  at(
    offset: number,
    options: () => UnpickleOptions,
  ): Promise<UnpickleResult & { start: number; next: number }>;
}

export function pickleStream(source: ByteSource): PickleStream {
  let buffer: Uint8Array = new Uint8Array(0);
  let bufferStart = 0;

  /** Makes the buffer cover `[offset, offset + length)`, reading only what it lacks. */
  const cover = async (offset: number, length: number) => {
    const bufferEnd = bufferStart + buffer.length;
    if (offset >= bufferStart && offset + length <= bufferEnd) return;
    if (offset >= bufferStart && offset <= bufferEnd) {
      const grown = new Uint8Array(offset + length - bufferStart);
      grown.set(buffer);
      await source.readInto(bufferEnd, grown.subarray(buffer.length));
      buffer = grown;
      return;
    }
    buffer = await source.read(offset, length);
    bufferStart = offset;
  };

  return {
    async at(offset, options) {
      const available = source.size - offset;
      let window = Math.min(INITIAL_WINDOW, available);
      for (;;) {
        await cover(offset, window);
        // Everything buffered from `offset` on is usable, possibly more than the window.
        const usable = bufferStart + buffer.length - offset;
        try {
          const result = unpickle(
            buffer,
            { ...options(), baseOffset: bufferStart },
            offset - bufferStart,
          );
          return { ...result, start: offset, next: bufferStart + result.end };
        } catch (error) {
          const truncated = error instanceof PickleError && error.code === "TRUNCATED";
          if (!truncated || usable >= available) throw error;
          if (usable >= MAX_PICKLE_BYTES) throw pickleTooLarge(source.name, usable, "pickle");
          window = Math.min(Math.max(usable, 1) * 2, available, MAX_PICKLE_BYTES);
        }
      }
    },
  };
}
