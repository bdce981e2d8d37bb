import { Buffer } from "node:buffer";
import { readSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { OutOfBoundsError } from "../errors.js";
import { useHostLatin1 } from "../formats/latin1.js";
import { type ByteSource, checkRange } from "./byte-source.js";

// Every Node entry point that reads files comes through here: zip entry names and pickled keys
// are then decoded by Buffer's native Latin-1 slice, on any Uint8Array. useHostLatin1 checks it
// on a sample and keeps the portable decoder if it is missing or wrong.
const latin1Slice = (
  Buffer.prototype as unknown as {
    latin1Slice?: (this: Uint8Array, start: number, end: number) => string;
  }
).latin1Slice;
if (typeof latin1Slice === "function") {
  useHostLatin1((bytes, start, end) => latin1Slice.call(bytes, start, end));
}

/** Largest single positional read; keeps each read well under Node's 2 GiB limit. */
const MAX_READ = 1 << 30;

/**
 * Reads up to this size are made synchronously. Opening a checkpoint and checking its zip
 * entries' local headers is many small reads one after another; a read from the page cache takes
 * a few microseconds, but a trip through libuv's thread pool and back about 30 (256 local headers
 * cost 10-20 ms before the first tensor could be copied). Larger reads stay asynchronous, so the
 * event loop is never held for long.
 */
const SYNC_READ_MAX = 64 << 10;

/** A local file read with positional reads on one handle; never loaded whole. */
export class FileSource implements ByteSource {
  bytesRead = 0;
  private constructor(
    private handle: FileHandle | undefined,
    readonly name: string,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<FileSource> {
    const handle = await open(path, "r");
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) {
        throw new OutOfBoundsError("NOT_A_FILE", "not a regular file", { file: path });
      }
      return new FileSource(handle, path, stat.size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    const bytes = new Uint8Array(length);
    await this.fill(offset, bytes);
    return bytes;
  }

  async readInto(offset: number, destination: Uint8Array): Promise<void> {
    checkRange(this.name, this.size, offset, destination.byteLength);
    await this.fill(offset, destination);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private async fill(offset: number, destination: Uint8Array): Promise<void> {
    const handle = this.handle;
    if (!handle) throw new OutOfBoundsError("CLOSED", "read after close", { file: this.name });
    const small = destination.byteLength <= SYNC_READ_MAX;
    let done = 0;
    while (done < destination.byteLength) {
      const length = Math.min(MAX_READ, destination.byteLength - done);
      const bytesRead = small
        ? readSync(handle.fd, destination, done, length, offset + done)
        : (await handle.read(destination, done, length, offset + done)).bytesRead;
      if (bytesRead === 0) {
        throw new OutOfBoundsError("TRUNCATED", "file ended early (was it truncated while open?)", {
          file: this.name,
          offset: offset + done,
        });
      }
      done += bytesRead;
      this.bytesRead += bytesRead;
    }
  }
}
