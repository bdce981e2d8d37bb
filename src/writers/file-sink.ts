import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import { WriteError } from "../errors.js";
import { useHostCrc32 } from "../formats/zip/crc32.js";
import type { ByteSink } from "./sink.js";

/**
 * Files that are replaced whole or not at all. Everything goes to a temporary file beside the
 * destination (`.<name>.<random>.tmp`, same folder so the rename cannot cross file systems);
 * close() flushes it, fsyncs it, renames it over the destination and fsyncs the folder, so after
 * a crash or a kill at any moment the destination is either its previous complete content or
 * absent, never partial. abort(), and any failure, delete the temporary file. A process killed
 * outright cannot delete it: stray `.*.tmp` files beside the destination are safe to remove.
 */

// Every Node entry point reaches this module (node.ts re-exports it; the tfjs saver writes
// through it): torch zips written and read from Node get their CRC-32 from zlib's native code.
// zlib.crc32 arrived in Node 20.15; on older releases the portable one stays.
if (typeof zlibCrc32 === "function") useHostCrc32(zlibCrc32);

/** Bytes gathered before each write to the file. */
const DEFAULT_BUFFER_BYTES = 8 << 20;

/** Bytes written between the early fsyncs that start the disk on them (see syncEarly). */
const EARLY_SYNC_BYTES = 64 << 20;

/** Largest single write; keeps each call well under Node's 2 GiB limit. */
const MAX_WRITE = 1 << 30;

/** Longest part of the destination's name kept in the temporary name (file names max 255 bytes). */
const MAX_STEM_BYTES = 128;

/** A directory cannot be fsynced on some systems (Windows, some network file systems). */
const UNSYNCABLE_FOLDER_CODES = new Set(["EISDIR", "EPERM", "EACCES", "EINVAL", "ENOTSUP"]);

export interface AtomicFileOptions {
  /** Bytes gathered in memory before each write to the file (default 8 MiB). */
  bufferBytes?: number;
}

/** `.<name>.<12 hex digits>.tmp`, with long names shortened so the result stays a valid file name. */
export function tempFileName(name: string): string {
  const encoder = new TextEncoder();
  let stem = "";
  for (const char of name) {
    if (encoder.encode(stem + char).byteLength > MAX_STEM_BYTES) break;
    stem += char;
  }
  return `.${stem}.${randomBytes(6).toString("hex")}.tmp`;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function writeFailed(what: string, file: string, cause: unknown, committed = false): WriteError {
  const code = errorCode(cause);
  const outcome = committed
    ? "The file is complete but may not survive a power loss."
    : "The destination was left as it was.";
  const problem =
    code === "ENOSPC" || code === "EDQUOT"
      ? "The disk is full. "
      : code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? "There is no permission to write in that folder. "
        : "";
  const hint = `${problem}${outcome}`;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new WriteError("WRITE_FAILED", `${what}: ${reason}`, { file, hint, cause });
}

/** Opens an atomic writer for `path`. The temporary file is created now; nothing else changes until close(). */
export async function openAtomicFile(
  path: string,
  options: AtomicFileOptions = {},
): Promise<ByteSink> {
  const bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  if (!Number.isSafeInteger(bufferBytes) || bufferBytes < 1) {
    throw new WriteError("INVALID_OPTION", `bufferBytes ${bufferBytes} is not a positive integer`);
  }
  const destination = resolve(path);
  const folder = dirname(destination);
  const temp = join(folder, tempFileName(basename(destination)));

  const previous = await stat(destination).catch(() => undefined);
  if (previous !== undefined && !previous.isFile()) {
    throw new WriteError("WRITE_FAILED", "destination exists and is not a regular file", {
      file: destination,
      hint: "Choose another path.",
    });
  }
  let handle: FileHandle;
  try {
    // "wx": fail rather than reuse a file that happens to have the same name.
    handle = await open(temp, "wx");
  } catch (error) {
    throw writeFailed("cannot create a temporary file beside the destination", destination, error);
  }
  try {
    // A replaced file keeps its permissions.
    if (previous !== undefined) await handle.chmod(previous.mode & 0o7777);
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw writeFailed("cannot set the temporary file's permissions", destination, error);
  }
  return atomicSink(handle, temp, destination, bufferBytes);
}

function atomicSink(
  handle: FileHandle,
  temp: string,
  destination: string,
  bufferBytes: number,
): ByteSink {
  let state: "open" | "committed" | "discarded" = "open";
  let handleOpen = true;
  const writes = backgroundWrites(handle, bufferBytes);
  let queue: Promise<unknown> = Promise.resolve();

  // One operation at a time, in call order, even if a caller does not await.
  function serial<T>(operation: () => Promise<T>): Promise<T> {
    const result = queue.then(operation);
    queue = result.catch(() => {});
    return result;
  }

  async function discard(): Promise<void> {
    state = "discarded";
    // A write still in flight finishes (or fails) before the handle closes under it.
    await writes.release();
    if (handleOpen) {
      handleOpen = false;
      await handle.close().catch(() => {});
    }
    await unlink(temp).catch(() => {});
  }

  function checkOpen(action: string): void {
    if (state !== "open") {
      throw new WriteError(
        "SINK_CLOSED",
        `${action} after the file was ${state === "committed" ? "closed" : "discarded (aborted, or a write failed)"}`,
        { file: destination },
      );
    }
  }

  return {
    write: (bytes) =>
      serial(async () => {
        checkOpen("write");
        try {
          await writes.append(bytes);
        } catch (error) {
          await discard();
          throw writeFailed("writing failed", destination, error);
        }
      }),

    close: () =>
      serial(async () => {
        checkOpen("close");
        try {
          await writes.flush();
          // The data must be on disk before the rename makes it the destination.
          await handle.sync();
          handleOpen = false;
          await handle.close();
          await rename(temp, destination);
        } catch (error) {
          await discard();
          throw writeFailed("finishing the file failed", destination, error);
        }
        state = "committed";
        await writes.release();
        await syncFolder(dirname(destination));
      }),

    abort: () =>
      serial(async () => {
        if (state === "open") await discard();
      }),
  };
}

/** Appends to a file through two buffers, so that filling one overlaps writing the other. */
interface BackgroundWrites {
  /** Copies `bytes` (or writes them, when at least a buffer's worth arrives with none buffered). */
  append(bytes: Uint8Array): Promise<void>;
  /** Writes everything buffered and waits for it. */
  flush(): Promise<void>;
  /** Waits for any write in flight, ignoring its outcome, and drops the buffers. */
  release(): Promise<void>;
}

/**
 * The file's writes, double-buffered: when a buffer fills, it is written in the background and
 * the other one takes the next bytes, so the caller reads its next chunk while the last one is
 * written (one buffer at a time, each write awaited before the next buffer is written: memory
 * stays at two buffers). A failed background write is reported by the next append or flush.
 */
function backgroundWrites(handle: FileHandle, bufferBytes: number): BackgroundWrites {
  const buffers: (Uint8Array | undefined)[] = [undefined, undefined];
  let current = 0;
  let used = 0;
  let inFlight: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;
  let unsynced = 0;
  let syncing: Promise<void> | undefined;

  /**
   * Starts the disk writing what is already written: the kernel would otherwise hold it until
   * close's fsync, which then writes the whole file while nothing else happens. An error here is
   * ignored: the fsync at close reports whatever is still wrong.
   */
  function syncEarly(bytes: number): void {
    unsynced += bytes;
    if (unsynced < EARLY_SYNC_BYTES || syncing) return;
    unsynced = 0;
    syncing = handle
      .datasync()
      .catch(() => {})
      .then(() => {
        syncing = undefined;
      });
  }

  async function writeAll(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.byteLength; ) {
      const length = Math.min(MAX_WRITE, bytes.byteLength - done);
      const { bytesWritten } = await handle.write(bytes, done, length);
      if (bytesWritten === 0) throw new Error("the file system accepted no bytes");
      done += bytesWritten;
    }
  }

  /** Waits for the write in flight; rethrows its error. */
  async function settle(): Promise<void> {
    await inFlight;
    inFlight = undefined;
    if (failure) throw failure.error;
  }

  /** Starts writing the current buffer's `used` bytes and switches to the other buffer. */
  async function startWrite(): Promise<void> {
    await settle();
    const full = buffers[current]!.subarray(0, used);
    inFlight = writeAll(full).then(
      () => syncEarly(full.byteLength),
      (error: unknown) => {
        failure ??= { error };
      },
    );
    current ^= 1;
    used = 0;
  }

  return {
    async append(bytes) {
      let offset = 0;
      while (offset < bytes.byteLength) {
        // Until a buffer exists, a buffer's worth or more goes straight to the file (one large
        // write allocates nothing); after that everything is copied, so that it can overlap.
        if (!buffers[current] && used === 0 && bytes.byteLength - offset >= bufferBytes) {
          await settle();
          await writeAll(bytes.subarray(offset));
          return;
        }
        buffers[current] ??= new Uint8Array(bufferBytes);
        const buffer = buffers[current]!;
        const n = Math.min(bufferBytes - used, bytes.byteLength - offset);
        buffer.set(bytes.subarray(offset, offset + n), used);
        used += n;
        offset += n;
        if (used === bufferBytes) await startWrite();
      }
    },
    async flush() {
      if (used > 0) await startWrite();
      await settle();
      await syncing;
    },
    async release() {
      await inFlight;
      inFlight = undefined;
      await syncing;
      buffers[0] = undefined;
      buffers[1] = undefined;
      used = 0;
    },
  };
}

/** Makes the rename itself durable. */
async function syncFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, "r");
    await handle.sync();
  } catch (error) {
    const code = errorCode(error);
    if (code === undefined || !UNSYNCABLE_FOLDER_CODES.has(code)) {
      throw writeFailed(
        "the file was written, but its folder could not be synced",
        folder,
        error,
        true,
      );
    }
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** Replaces `path` with `data` (text is written as UTF-8) atomically; for small files such as JSON state. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  // A buffer as large as the data means it is written in one go, without a copy.
  const sink = await openAtomicFile(path, { bufferBytes: Math.max(1, bytes.byteLength) });
  try {
    await sink.write(bytes);
    await sink.close();
  } catch (error) {
    await sink.abort().catch(() => {});
    throw error;
  }
}
