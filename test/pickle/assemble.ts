import { Op } from "../../src/formats/pickle/opcodes.js";

/**
 * A tiny assembler for hand-written pickles: opcodes and their operands, little-endian, as
 * CPython's pickletools documents them. Tests build hostile byte strings with it.
 */

export type Part = number | string | Uint8Array | Part[];

/** Concatenates parts: a number is one byte, a string its Latin-1 bytes (for text opcodes). */
export function bytes(...parts: Part[]): Uint8Array {
  const out: number[] = [];
  const pending: Part[] = [...parts].reverse();
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (typeof part === "number") out.push(part & 0xff);
    else if (typeof part === "string") for (const ch of part) out.push(ch.charCodeAt(0) & 0xff);
    else if (part instanceof Uint8Array) out.push(...part);
    else pending.push(...[...part].reverse());
  }
  return Uint8Array.from(out);
}

export function u16(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff];
}

export function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

export function u64(n: bigint | number): number[] {
  const value = BigInt(n);
  return Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
}

const utf8 = new TextEncoder();

export const proto = (version: number): Part => [Op.PROTO, version];
export const frame = (size: bigint | number): Part => [Op.FRAME, u64(size)];
export const binint = (n: number): Part => [Op.BININT, u32(n)];
export const binint1 = (n: number): Part => [Op.BININT1, n];
export const binput = (index: number): Part => [Op.BINPUT, index];
export const binget = (index: number): Part => [Op.BINGET, index];
export const longBinput = (index: number): Part => [Op.LONG_BINPUT, u32(index)];
export const longBinget = (index: number): Part => [Op.LONG_BINGET, u32(index)];

export function binunicode(text: string): Part {
  const encoded = utf8.encode(text);
  return [Op.BINUNICODE, u32(encoded.length), encoded];
}

export function shortBinunicode(text: string): Part {
  const encoded = utf8.encode(text);
  return [Op.SHORT_BINUNICODE, encoded.length, encoded];
}

/** GLOBAL: `c` module `\n` name `\n`. */
export function global(module: string, name: string): Part {
  return [Op.GLOBAL, `${module}\n${name}\n`];
}

/** STACK_GLOBAL with both names pushed as SHORT_BINUNICODE. */
export function stackGlobal(module: string, name: string): Part {
  return [shortBinunicode(module), shortBinunicode(name), Op.STACK_GLOBAL];
}
