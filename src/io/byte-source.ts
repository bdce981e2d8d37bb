import { OutOfBoundsError } from "../errors.js";

/**
 * Random-access bytes: a local file, a buffer in memory, a slice of either (a zip entry, a
 * safetensors data section). Every read is checked against `size` before it is made.
 */
export interface ByteSource {
  /** Shown in error messages: a file path, or `file.pt:archive/data/0` for a slice. */
  readonly name: string;
  readonly size: number;
  /** Reads `length` bytes at `offset` into a new array. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Fills `destination` completely with the bytes at `offset`. */
  readInto(offset: number, destination: Uint8Array): Promise<void>;
  /** Releases the underlying handle; reads after close fail. */
  close(): Promise<void>;
  /**
   * Resolves anything still lazy (a zip entry's local header) and checks the whole range, so
   * that later reads can only fail on I/O, never on a bad index.
   */
  prepare?(): Promise<void>;
  /** Bytes read so far, for benchmarks and the "opening reads only the index" promise. */
  readonly bytesRead: number;
}

/** Throws unless `[offset, offset + length)` lies inside `[0, size)`. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > size
  ) {
    throw new OutOfBoundsError(
      "OUT_OF_BOUNDS",
      `read of ${length} bytes at offset ${offset} goes past the end (size ${size} bytes)`,
      { file: name, offset, hint: "The file is truncated or its index is corrupt." },
    );
  }
}

/** Bytes already in memory. */
export class MemorySource implements ByteSource {
  bytesRead = 0;
  private closed = false;
  constructor(
    private readonly bytes: Uint8Array,
    readonly name = "<memory>",
  ) {}

  get size(): number {
    return this.bytes.byteLength;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.check(offset, length);
    this.bytesRead += length;
    return this.bytes.slice(offset, offset + length);
  }

  async readInto(offset: number, destination: Uint8Array): Promise<void> {
    this.check(offset, destination.byteLength);
    this.bytesRead += destination.byteLength;
    destination.set(this.bytes.subarray(offset, offset + destination.byteLength));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new OutOfBoundsError("CLOSED", "read after close", { file: this.name });
    checkRange(this.name, this.size, offset, length);
  }
}

/**
 * A window `[start, start + size)` of another source. `start` may be resolved lazily (a zip
 * entry's data begins after its local header, which is only read when the entry is first used):
 * pass a function, or leave it undefined in a subclass that overrides resolveStart().
 */
export class SliceSource implements ByteSource {
  #start: number | undefined;
  #pendingStart: Promise<number> | undefined;
  readonly #resolveStart: (() => Promise<number>) | undefined;
  readonly #name: string;

  constructor(
    protected readonly parent: ByteSource,
    start: number | (() => Promise<number>) | undefined,
    readonly size: number,
    name: string,
  ) {
    this.#name = name;
    if (typeof start === "number") {
      checkRange(parent.name, parent.size, start, size);
      this.#start = start;
    } else {
      this.#resolveStart = start;
    }
  }

  get name(): string {
    return this.#name;
  }

  get bytesRead(): number {
    return this.parent.bytesRead;
  }

  /** Where a lazy slice starts in its parent; called once, on first use. */
  protected resolveStart(): Promise<number> {
    if (!this.#resolveStart) throw new Error(`slice '${this.name}' has no start`);
    return this.#resolveStart();
  }

  /** Absolute offset of this slice in its parent (resolving it if lazy). */
  async origin(): Promise<number> {
    if (this.#start !== undefined) return this.#start;
    this.#pendingStart ??= this.resolveStart().then((start) => {
      checkRange(this.parent.name, this.parent.size, start, this.size);
      this.#start = start;
      return start;
    });
    return this.#pendingStart;
  }

  async prepare(): Promise<void> {
    await this.parent.prepare?.();
    await this.origin();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return this.parent.read((await this.origin()) + offset, length);
  }

  async readInto(offset: number, destination: Uint8Array): Promise<void> {
    checkRange(this.name, this.size, offset, destination.byteLength);
    return this.parent.readInto((await this.origin()) + offset, destination);
  }

  async close(): Promise<void> {}
}
