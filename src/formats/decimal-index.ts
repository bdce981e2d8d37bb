/**
 * Small non-negative integers written as String(n) does: digits only, no sign, no leading zero.
 * torch names its storages that way ("0", "1", "2"...), so such names can index arrays rather
 * than be hashed. Nine digits at most: limits are counts of zip entries or storages, which a
 * 256 MiB central directory keeps far below 10^9.
 */

/** The largest limit decimalIndex takes: nine digits. */
export const DECIMAL_INDEX_LIMIT = 1_000_000_000;

/** The number `text` spells, if it is canonical and below `limit` (at most 10^9); else -1. */
export function decimalIndex(text: string, limit: number): number {
  const length = text.length;
  if (length < 1 || length > 9 || (length > 1 && text.charCodeAt(0) === 0x30)) return -1;
  let value = 0;
  for (let i = 0; i < length; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value < limit ? value : -1;
}

/** decimalIndex of the ASCII bytes `bytes[start..end)`. */
export function decimalIndexIn(
  bytes: Uint8Array,
  start: number,
  end: number,
  limit: number,
): number {
  const length = end - start;
  if (length < 1 || length > 9 || (length > 1 && bytes[start] === 0x30)) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value < limit ? value : -1;
}
