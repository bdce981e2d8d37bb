import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { WriteError } from "../errors.js";
import type { ByteSink } from "./sink.js";

/**
 * Files that are replaced whole or not at all. Everything goes to a temporary file beside the
 * destination (`.<name>.<random>.tmp`, same folder so the rename cannot cross file systems);
 * close() flushes it, fsyncs it, renames it over the destination and fsyncs the folder, so after
 * a crash or a kill at any moment the destination is either its previous complete content or
 * absent, never partial. abort(), and any failure, delete the temporary file. A process killed
 * outright cannot delete it: stray `.*.tmp` files beside the destination are safe to remove.
 */

/** Bytes gathered before each write to the file. */
const DEFAULT_BUFFER_BYTES = 8 << 20;

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
  // Allocated on first use: a single large write goes straight to the file.
  let buffer: Uint8Array | undefined;
  let used = 0;
  let queue: Promise<unknown> = Promise.resolve();

  // One operation at a time, in call order, even if a caller does not await.
  function serial<T>(operation: () => Promise<T>): Promise<T> {
    const result = queue.then(operation);
    queue = result.catch(() => {});
    return result;
  }

  async function writeAll(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.byteLength; ) {
      const length = Math.min(MAX_WRITE, bytes.byteLength - done);
      const { bytesWritten } = await handle.write(bytes, done, length);
      if (bytesWritten === 0) throw new Error("the file system accepted no bytes");
      done += bytesWritten;
    }
  }

  async function append(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.byteLength) {
      if (used === 0 && bytes.byteLength - offset >= bufferBytes) {
        await writeAll(bytes.subarray(offset));
        return;
      }
      buffer ??= new Uint8Array(bufferBytes);
      const n = Math.min(bufferBytes - used, bytes.byteLength - offset);
      buffer.set(bytes.subarray(offset, offset + n), used);
      used += n;
      offset += n;
      if (used === bufferBytes) {
        await writeAll(buffer);
        used = 0;
      }
    }
  }

  async function discard(): Promise<void> {
    state = "discarded";
    buffer = undefined;
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
          await append(bytes);
        } catch (error) {
          await discard();
          throw writeFailed("writing failed", destination, error);
        }
      }),

    close: () =>
      serial(async () => {
        checkOpen("close");
        try {
          if (used > 0) await writeAll(buffer!.subarray(0, used));
          used = 0;
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
        buffer = undefined;
        await syncFolder(dirname(destination));
      }),

    abort: () =>
      serial(async () => {
        if (state === "open") await discard();
      }),
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
