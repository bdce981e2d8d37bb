import { MAX_HEADER_SIZE } from "./header.js";

/** Recognising safetensors files and shard indexes from their first bytes (no magic number). */

const OPEN_BRACE = 0x7b;

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/** The first byte in `bytes[start, end)` that is not JSON whitespace, or undefined. */
function firstNonWhitespace(bytes: Uint8Array, start: number, end: number): number | undefined {
  for (let i = start; i < Math.min(end, bytes.length); i++) {
    if (!isJsonWhitespace(bytes[i]!)) return bytes[i];
  }
  return undefined;
}

/**
 * Whether a file of `size` bytes starting with `first` looks like safetensors: an 8-byte
 * little-endian length n with n ≤ 100,000,000 and 8 + n ≤ size, then a header whose first
 * non-whitespace byte is `{`.
 */
export function looksLikeSafetensors(first: Uint8Array, size: number): boolean {
  if (first.length < 9) return false;
  const n = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE) || n > BigInt(size - 8)) return false;
  return firstNonWhitespace(first, 8, 8 + Number(n)) === OPEN_BRACE;
}

const WEIGHT_MAP = new TextEncoder().encode("weight_map");

/**
 * Whether `first` (the start of a file) looks like a sharded safetensors index: JSON that opens
 * with `{` and mentions "weight_map" within the bytes given.
 */
export function looksLikeShardIndex(first: Uint8Array): boolean {
  if (firstNonWhitespace(first, 0, first.length) !== OPEN_BRACE) return false;
  const last = first.length - WEIGHT_MAP.length;
  outer: for (let i = 0; i <= last; i++) {
    for (let k = 0; k < WEIGHT_MAP.length; k++) {
      if (first[i + k] !== WEIGHT_MAP[k]) continue outer;
    }
    return true;
  }
  return false;
}
