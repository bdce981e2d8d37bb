/** Little-endian field readers for zip records; callers check `offset + width <= bytes.length`. */

export function u16(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8);
}

export function u32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) +
    bytes[offset + 3]! * 0x1000000
  );
}

/** A 64-bit field exactly, or undefined when it is 2^53 or more (not exact as a number). */
export function u64(bytes: Uint8Array, offset: number): number | undefined {
  const high = u32(bytes, offset + 4);
  if (high >= 0x200000) return undefined;
  return high * 0x100000000 + u32(bytes, offset);
}
