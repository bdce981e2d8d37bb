import { type FileHandle, open } from "node:fs/promises";
import { OutOfBoundsError } from "../errors.js";
import { type ByteSource, checkRange } from "./byte-source.js";

/** Largest single positional read; keeps each read well under Node's 2 GiB limit. */
const MAX_READ = 1 << 30;

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
    let done = 0;
    while (done < destination.byteLength) {
      const length = Math.min(MAX_READ, destination.byteLength - done);
      const { bytesRead } = await handle.read(destination, done, length, offset + done);
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
