import { type ByteSource, SliceSource } from "../../io/byte-source.js";
import type { DType } from "../../tensors/dtype.js";
import type { ZipArchive } from "../zip/zip.js";
import { storagePyClass, type TorchStorage } from "./storage.js";

/**
 * A storage in a torch zip file: the first `byteLength` bytes of the entry at `index`. The
 * entry's byte source is made when the storage is first read, not when the checkpoint is
 * opened: a 20,000-tensor checkpoint keeps one storage per tensor, and a source made up front
 * nearly doubled what each kept (and what every garbage collection during the open copied).
 */
export class ZipStorage implements TorchStorage {
  #source: ByteSource | undefined = undefined;

  constructor(
    private readonly archive: ZipArchive,
    private readonly index: number,
    readonly byteLength: number,
    readonly dtype: DType,
    readonly bigEndian: boolean,
    readonly untyped: boolean,
    readonly key: string,
  ) {}

  get pyClass(): string {
    return storagePyClass(this.untyped);
  }

  /** The bytes; throws COMPRESSED_ENTRY if the entry is not stored. */
  get source(): ByteSource {
    if (this.#source === undefined) {
      const whole = this.archive.sourceAt(this.index);
      this.#source =
        whole.size === this.byteLength
          ? whole
          : new SliceSource(whole, 0, this.byteLength, whole.name);
    }
    return this.#source;
  }
}
