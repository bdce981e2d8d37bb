import { deflateRawSync } from "node:zlib";
import { crc32 } from "../../src/formats/zip/crc32.js";
import type { ByteSource } from "../../src/io/byte-source.js";
import { MemorySource } from "../../src/io/byte-source.js";

/**
 * A tiny zip writer for tests: every field can be overridden so that tests can build the broken
 * and hostile archives readers must refuse. By default it writes what torch.save writes: stored
 * entries, UTF-8 names, a 64-byte aligned data start (padding in a local extra field).
 */

export interface TestEntry {
  name: string;
  data: Uint8Array | string;
  /** 0 stored (default) or 8 deflated (compressed with zlib). */
  method?: 0 | 8;
  /** Default 0x0800 (UTF-8 name). */
  flags?: number;
  /** Raw name bytes, instead of `name` encoded as UTF-8. */
  nameBytes?: Uint8Array;
  /** CRC written in both headers (default: the real one). */
  crc?: number;
  /** Write sizes and offset as 0xFFFFFFFF with zip64 extra fields (local and central). */
  zip64?: boolean;
  /** Pad the local header's extra field so data starts on this boundary (default 64, 0 = none). */
  align?: number;
  /** Central directory overrides. */
  central?: Partial<{
    compressedSize: number;
    uncompressedSize: number;
    offset: number;
    disk: number;
  }>;
  /** Local header overrides (written as is). */
  local?: Partial<{
    signature: number;
    nameBytes: Uint8Array;
    flags: number;
    method: number;
    crc: number;
    compressedSize: number;
    uncompressedSize: number;
  }>;
}

export interface ZipOptions {
  comment?: string;
  /** Write zip64 end record and locator. */
  zip64End?: boolean;
  /** Override the entry count in the end record(s). */
  entryCount?: number;
  /** Added to the directory size written in the end record(s). */
  directorySizeDelta?: number;
  /** Override the directory offset written in the end record(s). */
  directoryOffset?: number;
  /** Disk number written in the end record. */
  disk?: number;
  /** Bytes put between the entries and the central directory. */
  gapBeforeDirectory?: number;
}

const encoder = new TextEncoder();

class Writer {
  private chunks: number[] = [];
  get length(): number {
    return this.chunks.length;
  }
  u8(...values: number[]): void {
    this.chunks.push(...values);
  }
  u16(value: number): void {
    this.u8(value & 0xff, (value >>> 8) & 0xff);
  }
  u32(value: number): void {
    this.u16(value & 0xffff);
    this.u16(Math.floor(value / 0x10000) & 0xffff);
  }
  u64(value: number | bigint): void {
    const big = BigInt(value);
    this.u32(Number(big & 0xffffffffn));
    this.u32(Number(big >> 32n));
  }
  bytes(data: Uint8Array): void {
    for (const byte of data) this.chunks.push(byte);
  }
  toBytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

export function buildZip(entries: readonly TestEntry[], options: ZipOptions = {}): Uint8Array {
  const out = new Writer();
  const central = new Writer();
  for (const entry of entries) {
    const raw = toBytes(entry.data);
    const method = entry.method ?? 0;
    const stored = method === 8 ? new Uint8Array(deflateRawSync(raw)) : raw;
    const flags = entry.flags ?? 0x0800;
    const name = entry.nameBytes ?? encoder.encode(entry.name);
    const crc = entry.crc ?? crc32(raw);
    const offset = out.length;
    const local = entry.local ?? {};
    const localName = local.nameBytes ?? name;

    let localExtra = new Writer();
    if (entry.zip64) {
      localExtra.u16(1);
      localExtra.u16(16);
      localExtra.u64(local.uncompressedSize ?? raw.length);
      localExtra.u64(local.compressedSize ?? stored.length);
    }
    const align = entry.align ?? 64;
    if (align > 0) {
      const base = offset + 30 + localName.length + localExtra.length;
      let pad = (align - ((base + 4) % align)) % align;
      const padded = new Writer();
      padded.bytes(localExtra.toBytes());
      padded.u16(0x4246); // "FB", the id torch's writer uses for its padding field
      padded.u16(pad);
      while (pad-- > 0) padded.u8(0x5a);
      localExtra = padded;
    }
    out.u32(local.signature ?? 0x04034b50);
    out.u16(entry.zip64 ? 45 : 20);
    out.u16(local.flags ?? flags);
    out.u16(local.method ?? method);
    out.u16(0);
    out.u16(0);
    out.u32(local.crc ?? crc);
    out.u32(entry.zip64 ? 0xffffffff : (local.compressedSize ?? stored.length));
    out.u32(entry.zip64 ? 0xffffffff : (local.uncompressedSize ?? raw.length));
    out.u16(localName.length);
    out.u16(localExtra.length);
    out.bytes(localName);
    out.bytes(localExtra.toBytes());
    out.bytes(stored);

    const compressedSize = entry.central?.compressedSize ?? stored.length;
    const uncompressedSize = entry.central?.uncompressedSize ?? raw.length;
    const headerOffset = entry.central?.offset ?? offset;
    const centralExtra = new Writer();
    if (entry.zip64) {
      centralExtra.u16(1);
      centralExtra.u16(24);
      centralExtra.u64(uncompressedSize);
      centralExtra.u64(compressedSize);
      centralExtra.u64(headerOffset);
    }
    central.u32(0x02014b50);
    central.u16(entry.zip64 ? 45 : 20);
    central.u16(entry.zip64 ? 45 : 20);
    central.u16(flags);
    central.u16(method);
    central.u16(0);
    central.u16(0);
    central.u32(crc);
    central.u32(entry.zip64 ? 0xffffffff : compressedSize);
    central.u32(entry.zip64 ? 0xffffffff : uncompressedSize);
    central.u16(name.length);
    central.u16(centralExtra.length);
    central.u16(0);
    central.u16(entry.central?.disk ?? 0);
    central.u16(0);
    central.u32(0);
    central.u32(entry.zip64 ? 0xffffffff : headerOffset);
    central.bytes(name);
    central.bytes(centralExtra.toBytes());
  }
  for (let i = 0; i < (options.gapBeforeDirectory ?? 0); i++) out.u8(0);
  const directoryOffset = options.directoryOffset ?? out.length;
  const directory = central.toBytes();
  out.bytes(directory);
  const count = options.entryCount ?? entries.length;
  const size = directory.length + (options.directorySizeDelta ?? 0);
  if (options.zip64End) {
    const recordOffset = out.length;
    out.u32(0x06064b50);
    out.u64(44);
    out.u16(45);
    out.u16(45);
    out.u32(options.disk ?? 0);
    out.u32(0);
    out.u64(count);
    out.u64(count);
    out.u64(size);
    out.u64(directoryOffset);
    out.u32(0x07064b50);
    out.u32(0);
    out.u64(recordOffset);
    out.u32(1);
  }
  const comment = encoder.encode(options.comment ?? "");
  out.u32(0x06054b50);
  out.u16(options.zip64End ? 0xffff : (options.disk ?? 0));
  out.u16(options.zip64End ? 0xffff : 0);
  out.u16(options.zip64End ? 0xffff : count);
  out.u16(options.zip64End ? 0xffff : count);
  out.u32(options.zip64End ? 0xffffffff : size);
  out.u32(options.zip64End ? 0xffffffff : directoryOffset);
  out.u16(comment.length);
  out.bytes(comment);
  return out.toBytes();
}

export function memory(bytes: Uint8Array, name = "test.zip"): ByteSource & { bytesRead: number } {
  return new MemorySource(bytes, name);
}

/** The code of the error `promise` rejects with (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

/** Like `rejectionOf` for a function that throws synchronously or rejects. */
export async function errorOf(run: () => unknown): Promise<Error & { code?: string }> {
  try {
    await run();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected an error");
}
