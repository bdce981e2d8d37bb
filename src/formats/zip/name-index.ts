import { decimalIndex, decimalIndexIn } from "../decimal-index.js";

/**
 * Entry names → entry positions, for finding an entry by name and refusing an archive that names
 * one twice. ASCII names (all a torch.save archive has) are hashed straight from the directory's
 * bytes into an open-addressing table, so that opening an archive of 20,000 entries makes no
 * string per entry; the rare non-ASCII name is decoded and kept in a Map. The two never collide:
 * an ASCII name decodes to ASCII text, and every other name to text with a character above 0x7F.
 */
export class NameIndex {
  /** Entry position + 1 in each slot, 0 for an empty slot. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly decoded = new Map<string, number>();
  /** The positions of the entries named `prefix` + a number, by number, for the last such prefix. */
  private numbered: { prefix: string; positions: Int32Array } | undefined;
  /** The last prefix looked up, as bytes and hashed: the same prefix comes once per tensor. */
  private lastPrefix: { text: string; bytes: Uint8Array; hash: number } | undefined;

  /**
   * @param bytes the central directory, which holds the ASCII names
   * @param nameStart where each entry's name starts in `bytes`
   * @param nameLength each entry's name length
   * @param capacity how many names at most will be added
   */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly nameStart: Uint32Array,
    private readonly nameLength: Uint16Array,
    capacity: number,
  ) {
    // At most half full, so that a probe sequence stays short.
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
  }

  /** Adds entry `index`, whose name is ASCII bytes; returns the position of an entry already so named, or -1. */
  addAscii(index: number): number {
    const start = this.nameStart[index]!;
    const length = this.nameLength[index]!;
    const { bytes, slots, mask } = this;
    for (let slot = hashBytes(bytes, start, start + length) & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot]! - 1;
      if (held < 0) {
        slots[slot] = index + 1;
        return -1;
      }
      if (
        this.nameLength[held] === length &&
        sameBytesAt(bytes, this.nameStart[held]!, start, length)
      ) {
        return held;
      }
    }
  }

  /** Adds entry `index` under its decoded non-ASCII name; returns the position of an entry already so named, or -1. */
  addDecoded(index: number, name: string): number {
    const held = this.decoded.get(name);
    if (held !== undefined) return held;
    this.decoded.set(name, index);
    return -1;
  }

  /**
   * The position of the entry named `prefix + name`, or -1. The two are not joined: a torch
   * checkpoint looks up `<folder>/data/<key>` once per tensor, and a joined string is one more to
   * allocate and to flatten before its characters can be read.
   */
  find(name: string, prefix = ""): number {
    if (prefix !== "") {
      // A canonical number is that number's name: String(number) === name.
      const number = decimalIndex(name, this.nameStart.length);
      if (number >= 0) return this.findNumbered(number, prefix);
    }
    return this.findText(name, prefix);
  }

  /**
   * find(String(number), prefix), for a non-negative integer `number`, without making the
   * string where the numbered names' positions answer it.
   */
  findNumbered(number: number, prefix: string): number {
    if (number < this.nameStart.length) {
      const positions = this.numberedUnder(prefix);
      if (positions !== undefined) return positions[number]!;
    }
    return this.findText(String(number), prefix);
  }

  private findText(name: string, prefix: string): number {
    const start = this.prefixState(prefix);
    if (start === undefined || !isAsciiText(name)) return this.decoded.get(prefix + name) ?? -1;
    const { bytes, slots, mask } = this;
    const prefixBytes = start.bytes;
    const length = prefixBytes.length + name.length;
    for (let slot = hashText(name, start.hash) & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot]! - 1;
      if (held < 0) return -1;
      if (this.nameLength[held] !== length) continue;
      const at = this.nameStart[held]!;
      if (sameBytes(bytes, at, prefixBytes) && sameText(bytes, at + prefixBytes.length, name)) {
        return held;
      }
    }
  }

  /**
   * Where each entry named `prefix` followed by a number n (written as String(n), below the
   * number of entries) is, indexed by n; -1 where there is none. torch keeps a checkpoint's
   * storages at `<folder>/data/0`, `1`, `2`..., and opening it looks each one up in that order,
   * which this turns into reads of consecutive slots instead of a hash probe at a random place
   * in a table the size of the directory.
   */
  private numberedUnder(prefix: string): Int32Array | undefined {
    // Tested against undefined first: `?.` compared undefined with the prefix on each new archive's
    // first call, where code optimized for comparing two strings was thrown away.
    const numbered = this.numbered;
    if (numbered !== undefined && numbered.prefix === prefix) return numbered.positions;
    return this.indexNumbered(prefix);
  }

  /**
   * Finds the numbered names under `prefix` in one pass over the names, for findNumbered and
   * find to use. Called by numberedUnder on first need, and by a torch loader once per file
   * before its first lookup: then the lookup made once per tensor never takes this path, which
   * its optimized code has no type feedback for (V8 gathers none on a function's first calls)
   * and was thrown away over at the first lookup of each new file.
   */
  indexNumbered(prefix: string): Int32Array | undefined {
    const start = this.prefixState(prefix);
    if (start === undefined) return undefined;
    const { bytes, nameStart, nameLength } = this;
    const prefixBytes = start.bytes;
    const count = nameStart.length;
    const positions = new Int32Array(count).fill(-1);
    for (let index = 0; index < count; index++) {
      const at = nameStart[index]!;
      const end = at + nameLength[index]!;
      if (end <= at + prefixBytes.length || !sameBytes(bytes, at, prefixBytes)) continue;
      const number = decimalIndexIn(bytes, at + prefixBytes.length, end, count);
      if (number >= 0) positions[number] = index;
    }
    this.numbered = { prefix, positions };
    return positions;
  }

  /** `prefix` as bytes with its hash, or undefined when it is not ASCII. */
  private prefixState(prefix: string): { bytes: Uint8Array; hash: number } | undefined {
    if (this.lastPrefix?.text === prefix) return this.lastPrefix;
    if (!isAsciiText(prefix)) return undefined;
    const bytes = Uint8Array.from(prefix, (c) => c.charCodeAt(0));
    this.lastPrefix = { text: prefix, bytes, hash: hashText(prefix, FNV_OFFSET) };
    return this.lastPrefix;
  }
}

// FNV-1a, 32-bit: the same hash of a name's bytes and of its characters (they are equal for ASCII).
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = FNV_OFFSET;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ bytes[i]!, FNV_PRIME);
  return hash >>> 0;
}

/** Continues `hash` over the characters of `text`. */
function hashText(text: string, start: number): number {
  let hash = start;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  return hash >>> 0;
}

function sameBytesAt(bytes: Uint8Array, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/** Whether `bytes` holds `expected` at `start`. */
function sameBytes(bytes: Uint8Array, start: number, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (bytes[start + i] !== expected[i]) return false;
  return true;
}

function sameText(bytes: Uint8Array, start: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (bytes[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

function isAsciiText(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}
