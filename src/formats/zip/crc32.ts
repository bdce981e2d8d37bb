/**
 * CRC-32 as zip uses it (IEEE 802.3, reflected polynomial 0xEDB88320), by "slicing-by-16":
 * sixteen bytes per step through sixteen 256-entry tables, read as four 32-bit words. A table
 * lookup per byte ran at about 0.3 GiB/s here, most of a torch zip writer's time; this runs
 * at about 1.5 GiB/s. Results are identical to the byte-at-a-time algorithm (see the tests).
 */

/** Bytes consumed per step of the main loop (one table per byte). */
const SLICES = 16;

/**
 * `TABLES[k * 256 + n]` is the CRC register after feeding byte `n` followed by `k` zero bytes:
 * table 0 is the classic byte-at-a-time table, and each further table advances one byte more.
 * 16 KiB, built when the module loads (a few microseconds): as a constant rather than a lazily
 * set variable, the compiled loop reads it about a fifth faster.
 */
const TABLES = crcTables();

function crcTables(): Int32Array {
  const t = new Int32Array(SLICES * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let k = 1; k < SLICES; k++) {
    for (let n = 0; n < 256; n++) {
      const previous = t[(k - 1) * 256 + n]!;
      t[k * 256 + n] = (previous >>> 8) ^ t[previous & 0xff]!;
    }
  }
  return t;
}

/** Typed-array words are in platform byte order; the word loop assumes little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A CRC-32 with the same inputs and results as `crc32` below, e.g. Node's `zlib.crc32`. */
export type Crc32 = (bytes: Uint8Array, crc: number) => number;

let hostCrc32: Crc32 | undefined;

/**
 * Makes `crc32` use the host's own implementation. The Node entry point passes `zlib.crc32`
 * (native, about 2.5x this file's speed here), so writing a torch zip is not held up by its
 * checksum; a browser keeps the portable one. Pass undefined to go back to it.
 */
export function useHostCrc32(implementation: Crc32 | undefined): void {
  hostCrc32 = implementation;
}

/**
 * CRC-32 of `bytes`. Pass the previous result as `crc` to continue a running checksum over
 * several chunks. The result is an unsigned 32-bit number.
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  // zlib.crc32 of no bytes is 0 whatever `crc` is (zlib's crc32 of a null buffer), which would
  // reset a running checksum at an empty chunk: no bytes leave the checksum as it was.
  if (bytes.byteLength === 0) return crc >>> 0;
  return hostCrc32 ? hostCrc32(bytes, crc) >>> 0 : portableCrc32(bytes, crc);
}

/** crc32 in plain JavaScript (what runs where the host offers none). */
export function portableCrc32(bytes: Uint8Array, crc = 0): number {
  const t = TABLES;
  const n = bytes.length;
  let c = ~crc;
  let i = 0;
  // Byte at a time up to a 4-byte boundary, so the middle can be read as aligned 32-bit words.
  while (i < n && (bytes.byteOffset + i) % 4 !== 0) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  const blocks = LITTLE_ENDIAN ? Math.floor((n - i) / SLICES) : 0;
  if (blocks > 0) {
    c = crcBlocks(new Int32Array(bytes.buffer, bytes.byteOffset + i, blocks * 4), c);
    i += blocks * SLICES;
  }
  while (i < n) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The register after feeding `words` (little-endian, four per step): the first word is folded
 * into the register, and each of the 16 bytes is looked up in the table for its distance from
 * the end of the step.
 */
function crcBlocks(words: Int32Array, crc: number): number {
  const t = TABLES;
  let c = crc;
  for (let k = 0; k < words.length; k += 4) {
    const a = words[k]! ^ c;
    const b = words[k + 1]!;
    const d = words[k + 2]!;
    const e = words[k + 3]!;
    c =
      t[3840 + (a & 0xff)]! ^
      t[3584 + ((a >>> 8) & 0xff)]! ^
      t[3328 + ((a >>> 16) & 0xff)]! ^
      t[3072 + (a >>> 24)]! ^
      t[2816 + (b & 0xff)]! ^
      t[2560 + ((b >>> 8) & 0xff)]! ^
      t[2304 + ((b >>> 16) & 0xff)]! ^
      t[2048 + (b >>> 24)]! ^
      t[1792 + (d & 0xff)]! ^
      t[1536 + ((d >>> 8) & 0xff)]! ^
      t[1280 + ((d >>> 16) & 0xff)]! ^
      t[1024 + (d >>> 24)]! ^
      t[768 + (e & 0xff)]! ^
      t[512 + ((e >>> 8) & 0xff)]! ^
      t[256 + ((e >>> 16) & 0xff)]! ^
      t[e >>> 24]!;
  }
  return c;
}
