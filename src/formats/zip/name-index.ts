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
        sameBytes(bytes, this.nameStart[held]!, start, length)
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
    const length = prefix.length + name.length;
    if (!isAsciiText(prefix) || !isAsciiText(name)) {
      return this.decoded.get(prefix + name) ?? -1;
    }
    const { bytes, slots, mask } = this;
    const hash = hashText(name, hashText(prefix, FNV_OFFSET));
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot]! - 1;
      if (held < 0) return -1;
      if (this.nameLength[held] !== length) continue;
      const start = this.nameStart[held]!;
      if (sameText(bytes, start, prefix) && sameText(bytes, start + prefix.length, name)) {
        return held;
      }
    }
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

function sameBytes(bytes: Uint8Array, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (bytes[a + i] !== bytes[b + i]) return false;
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
