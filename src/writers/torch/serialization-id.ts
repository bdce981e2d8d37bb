/**
 * The `.data/serialization_id` record: 40 decimal digits that torch logs to tell files apart
 * (nothing checks it on load). torch builds it from two 64-bit hashes, each printed as 20 digits:
 *  1. c10::hash_combine over std::hash of every record name, in an unordered_set's iteration
 *     order. Neither the hash nor the order is portable, so loadout uses 64-bit FNV-1a of each
 *     name, combined the same way in the order the records were written.
 *  2. c10::hash_combine over the CRC-32 of every record that has a data descriptor (a non-empty
 *     one), in write order, starting from 0. This half is computed exactly as torch does.
 * The id is therefore deterministic: the same content gives the same file.
 */

const MASK = (1n << 64n) - 1n;

/** c10::hash_combine on 64-bit size_t: seed ^ (value + 0x9e3779b9 + (seed << 6) + (seed >> 2)). */
export function hashCombine(seed: bigint, value: bigint): bigint {
  return (seed ^ ((value + 0x9e3779b9n + ((seed << 6n) & MASK) + (seed >> 2n)) & MASK)) & MASK;
}

function fnv1a64(bytes: Uint8Array): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & MASK;
  return hash;
}

export interface WrittenRecord {
  /** Name relative to the archive folder (`data.pkl`, `data/0`). */
  name: string;
  size: number;
  crc: number;
}

export function serializationId(records: readonly WrittenRecord[]): string {
  const encoder = new TextEncoder();
  let names = 0n;
  let crcs = 0n;
  for (const record of records) {
    names = hashCombine(names, fnv1a64(encoder.encode(record.name)));
    if (record.size > 0) crcs = hashCombine(crcs, BigInt(record.crc));
  }
  return `${names.toString().padStart(20, "0")}${crcs.toString().padStart(20, "0")}`;
}
