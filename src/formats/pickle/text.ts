import { PickleError } from "../../errors.js";
import { asciiText, isAscii } from "../latin1.js";

/**
 * Decoders for the textual parts of a pickle, each matching what CPython does with the same
 * bytes: UTF-8 with 'surrogatepass', raw-unicode-escape, Python bytes-literal escapes, and the
 * `int(x, 0)` / `float(x)` literals of protocol 0. Errors carry no location: the unpickler adds
 * the opcode's offset.
 */

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Longest decimal literal CPython 3.11 converts (sys.get_int_max_str_digits()). */
export const MAX_INT_DIGITS = 4300;

function bad(what: string): PickleError {
  return new PickleError("BAD_LITERAL", what);
}

function badString(what: string): PickleError {
  return new PickleError("BAD_STRING", what);
}

/** Strict UTF-8, or undefined when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string | undefined {
  // Pickled keys and names are nearly always ASCII, which reads the same as Latin-1 and is
  // decoded several times faster that way (with the host's decoder) than by a TextDecoder call.
  if (isAscii(bytes, start, end)) return asciiText(bytes, start, end);
  try {
    return utf8.decode(bytes.subarray(start, end));
  } catch {
    return undefined;
  }
}

/** UTF-8 with CPython's 'surrogatepass': encoded lone surrogates (ED A0..BF xx) are kept. */
export function decodeUtf8SurrogatePass(bytes: Uint8Array, start: number, end: number): string {
  const strict = decodeUtf8(bytes, start, end);
  if (strict !== undefined) return strict;
  const units = new StringBuilder();
  let i = start;
  while (i < end) {
    const b0 = bytes[i]!;
    let codePoint: number;
    let length: number;
    if (b0 < 0x80) {
      codePoint = b0;
      length = 1;
    } else if (b0 >= 0xc2 && b0 <= 0xdf) {
      codePoint = b0 & 0x1f;
      length = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      codePoint = b0 & 0x0f;
      length = 3;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      codePoint = b0 & 0x07;
      length = 4;
    } else {
      throw badString(`invalid UTF-8 byte 0x${b0.toString(16)} at string position ${i - start}`);
    }
    if (i + length > end)
      throw badString(`truncated UTF-8 sequence at string position ${i - start}`);
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k]!;
      if ((next & 0xc0) !== 0x80) {
        throw badString(`invalid UTF-8 continuation byte at string position ${i + k - start}`);
      }
      codePoint = (codePoint << 6) | (next & 0x3f);
    }
    const minimum = length === 3 ? 0x800 : length === 4 ? 0x10000 : 0;
    if (codePoint < minimum || codePoint > 0x10ffff) {
      throw badString(`invalid UTF-8 sequence at string position ${i - start}`);
    }
    units.pushCodePoint(codePoint);
    i += length;
  }
  return units.finish();
}

/**
 * CPython's raw-unicode-escape decoder (the UNICODE opcode): bytes are Latin-1 except
 * `\uXXXX` and `\UXXXXXXXX`; a backslash before anything else is kept with that character.
 */
export function decodeRawUnicodeEscape(bytes: Uint8Array, start: number, end: number): string {
  const units = new StringBuilder();
  let i = start;
  while (i < end) {
    const c = bytes[i++]!;
    if (c !== 0x5c || i >= end) {
      units.push(c);
      continue;
    }
    const kind = bytes[i++]!;
    const digits = kind === 0x75 ? 4 : kind === 0x55 ? 8 : 0;
    if (digits === 0) {
      units.push(0x5c);
      units.push(kind);
      continue;
    }
    let codePoint = 0;
    for (let k = 0; k < digits; k++, i++) {
      const digit = i < end ? hexValue(bytes[i]!) : -1;
      if (digit < 0) {
        throw badString(`truncated \\${String.fromCharCode(kind)} escape in a UNICODE string`);
      }
      codePoint = codePoint * 16 + digit;
    }
    if (codePoint > 0x10ffff)
      throw badString("\\Uxxxxxxxx escape out of range in a UNICODE string");
    units.pushCodePoint(codePoint);
  }
  return units.finish();
}

const SIMPLE_ESCAPES: Readonly<Record<number, number>> = {
  92: 0x5c, // \\
  39: 0x27, // \'
  34: 0x22, // \"
  97: 0x07, // \a
  98: 0x08, // \b
  102: 0x0c, // \f
  110: 0x0a, // \n
  114: 0x0d, // \r
  116: 0x09, // \t
  118: 0x0b, // \v
};

/** Python bytes-literal escapes (codecs.escape_decode), as the STRING opcode applies them. */
export function decodeStringEscapes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  let length = 0;
  let i = start;
  while (i < end) {
    const c = bytes[i++]!;
    if (c !== 0x5c) {
      out[length++] = c;
      continue;
    }
    if (i >= end) throw badString("trailing \\ in a STRING literal");
    const e = bytes[i++]!;
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out[length++] = simple;
    } else if (e === 0x0a) {
      // Backslash-newline is a line continuation: nothing.
    } else if (e >= 0x30 && e <= 0x37) {
      let value = e - 0x30;
      for (let k = 0; k < 2 && i < end && bytes[i]! >= 0x30 && bytes[i]! <= 0x37; k++) {
        value = value * 8 + (bytes[i++]! - 0x30);
      }
      out[length++] = value & 0xff;
    } else if (e === 0x78) {
      const high = i < end ? hexValue(bytes[i]!) : -1;
      const low = i + 1 < end ? hexValue(bytes[i + 1]!) : -1;
      if (high < 0 || low < 0) throw badString("invalid \\x escape in a STRING literal");
      out[length++] = high * 16 + low;
      i += 2;
    } else {
      out[length++] = 0x5c;
      out[length++] = e;
    }
  }
  return out.slice(0, length);
}

const DECIMAL = /^[+-]?(?:[1-9](?:_?\d)*|0(?:_?0)*)$/;
const PREFIXED = /^[+-]?0(?:[xX](?:_?[\da-fA-F])+|[oO](?:_?[0-7])+|[bB](?:_?[01])+)$/;

/**
 * Python's `int(text, 0)` for the INT, LONG, PUT and GET lines: decimal (no leading zeros),
 * 0x / 0o / 0b, underscores between digits. Decimal literals longer than CPython's 4,300-digit
 * limit are refused as CPython refuses them.
 */
export function parseIntLiteral(text: string): number | bigint {
  const literal = text.trim();
  const decimal = DECIMAL.test(literal);
  if (!decimal && !PREFIXED.test(literal)) {
    throw bad(`invalid integer literal '${preview(literal)}'`);
  }
  const negative = literal.startsWith("-");
  const unsigned = literal.replace(/^[+-]/, "").replaceAll("_", "");
  if (decimal && unsigned.length > MAX_INT_DIGITS) {
    throw bad(`integer literal of ${unsigned.length} digits exceeds CPython's ${MAX_INT_DIGITS}`);
  }
  if (decimal && unsigned.length < 16) return negative ? -Number(unsigned) : Number(unsigned);
  const magnitude = BigInt(unsigned);
  return normalizeInt(negative ? -magnitude : magnitude);
}

const FLOAT =
  /^[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$/;
const SPECIAL_FLOAT = /^([+-]?)(inf|infinity|nan)$/i;

/** Python's `float(text)` for the FLOAT line: decimal literals, inf, infinity and nan. */
export function parseFloatLiteral(text: string): number {
  const literal = text.trim();
  if (FLOAT.test(literal)) return Number(literal.replaceAll("_", ""));
  const special = SPECIAL_FLOAT.exec(literal);
  if (!special) throw bad(`invalid float literal '${preview(literal)}'`);
  if (special[2]!.toLowerCase() === "nan") return Number.NaN;
  return special[1] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

/** A little-endian two's-complement integer (LONG1 / LONG4), exact at any size. */
export function decodeLong(bytes: Uint8Array, start: number, end: number): number | bigint {
  const length = end - start;
  if (length === 0) return 0;
  if (length <= 6) {
    let value = 0;
    for (let i = end - 1; i >= start; i--) value = value * 256 + bytes[i]!;
    return bytes[end - 1]! >= 0x80 ? value - 2 ** (8 * length) : value;
  }
  let hex = "";
  for (let i = end - 1; i >= start; i--) hex += bytes[i]!.toString(16).padStart(2, "0");
  let value = BigInt(`0x${hex}`);
  if (bytes[end - 1]! >= 0x80) value -= 1n << BigInt(8 * length);
  return normalizeInt(value);
}

/** A Python int as loadout holds it: a number when it is a safe integer, else a bigint. */
export function normalizeInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Code units per String.fromCharCode call: well below any engine's argument limit. */
const CHUNK = 8192;

/** Collects UTF-16 code units in a fixed buffer, turning them into text a chunk at a time. */
class StringBuilder {
  private readonly units = new Uint16Array(CHUNK);
  private count = 0;
  private text = "";

  push(unit: number): void {
    if (this.count === CHUNK) this.flush();
    this.units[this.count++] = unit;
  }

  pushCodePoint(codePoint: number): void {
    if (codePoint < 0x10000) {
      this.push(codePoint);
    } else {
      const offset = codePoint - 0x10000;
      this.push(0xd800 + (offset >> 10));
      this.push(0xdc00 + (offset & 0x3ff));
    }
  }

  finish(): string {
    this.flush();
    return this.text;
  }

  private flush(): void {
    this.text += String.fromCharCode.apply(
      null,
      this.units.subarray(0, this.count) as unknown as number[],
    );
    this.count = 0;
  }
}

function preview(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
