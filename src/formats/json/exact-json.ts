import { FormatError } from "../../errors.js";
import { jsonPointer } from "./pointer.js";
import { utf8OffsetOf } from "./utf8.js";

/**
 * A strict RFC 8259 parser for JSON we cannot trust (safetensors headers, shard indexes).
 * Unlike JSON.parse it keeps integers exact (bigint beyond 2^53), refuses duplicate keys instead
 * of keeping the last, bounds nesting, and never recurses: containers live on an explicit stack.
 */

export type JsonObject = Map<string, JsonValue>;
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;

export interface JsonParseOptions {
  /** Containers open at once (default 64). */
  maxDepth?: number;
  /** Refuse numbers written with a fraction, an exponent, or as `-0` (they are floats). */
  integersOnly?: boolean;
  /** File named in errors. */
  file?: string;
  /** Byte offset of the text within `file`, added to error offsets. */
  baseOffset?: number;
  /**
   * Filled with the index in `text` (UTF-16 code units) where each object and array begins, so
   * a caller can point its own errors at a value (convert with `utf8OffsetOf`).
   */
  positions?: Map<JsonObject | JsonValue[], number>;
}

export const DEFAULT_MAX_JSON_DEPTH = 64;

/** Integers with more digits than this are refused rather than handed to BigInt. */
const MAX_INTEGER_DIGITS = 400;

/** An open object; `key` is the member being read, undefined while the key itself is read. */
type ObjectFrame = { kind: "object"; value: JsonObject; key: string | undefined };
type Frame = ObjectFrame | { kind: "array"; value: JsonValue[] };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** The one-letter escapes: the code of the letter after the backslash → what it stands for. */
const simpleEscapes = new Map(
  [...'"\\/bfnrt'].map((letter, k) => [letter.charCodeAt(0), '"\\/\b\f\n\r\t'[k]!]),
);

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function hexValue(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Parses one JSON text. Objects become Maps in document order; integers are numbers when safe,
 * bigints otherwise; other numbers are numbers. Throws a FormatError whose `code` is
 * JSON_SYNTAX, JSON_DUPLICATE_KEY, JSON_TOO_DEEP or JSON_NOT_INTEGER, whose `offset` is a UTF-8
 * byte offset (plus `baseOffset`) and whose `key` is the JSON Pointer of where it happened.
 */
export function parseExactJson(text: string, options: JsonParseOptions = {}): JsonValue {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const integersOnly = options.integersOnly ?? false;
  const positions = options.positions;
  const length = text.length;
  const stack: Frame[] = [];
  let i = 0;

  function fail(code: string, what: string, at: number): never {
    throw new FormatError(code, what, {
      file: options.file,
      key: pointerHere(),
      offset: (options.baseOffset ?? 0) + utf8OffsetOf(text, Math.min(at, length)),
      hint: code === "JSON_SYNTAX" ? "The JSON text is malformed or truncated." : undefined,
    });
  }

  /** JSON Pointer of the value being read. */
  function pointerHere(): string {
    const path: (string | number)[] = [];
    for (const frame of stack) {
      if (frame.kind === "array") path.push(frame.value.length);
      else if (frame.key !== undefined) path.push(frame.key);
    }
    return jsonPointer(path);
  }

  function describe(at: number): string {
    if (at >= length) return "end of input";
    const c = text.codePointAt(at)!;
    return c < 0x20 || c === 0x7f
      ? `control character U+${c.toString(16).padStart(4, "0")}`
      : `'${String.fromCodePoint(c)}'`;
  }

  function skipWhitespace(): void {
    while (i < length && isWhitespace(text.charCodeAt(i))) i++;
  }

  function expect(c: number, what: string): void {
    skipWhitespace();
    if (text.charCodeAt(i) !== c) fail("JSON_SYNTAX", `expected ${what}, found ${describe(i)}`, i);
    i++;
  }

  function readHex4(at: number): number {
    let value = 0;
    for (let k = 0; k < 4; k++) {
      const digit = hexValue(text.charCodeAt(at + k));
      if (digit < 0) fail("JSON_SYNTAX", "invalid \\u escape: expected 4 hex digits", at - 2);
      value = value * 16 + digit;
    }
    return value;
  }

  /** Reads the string starting at the quote at `i`; leaves `i` after the closing quote. */
  function readString(): string {
    const start = i;
    i++;
    let out = "";
    let chunk = i;
    for (;;) {
      if (i >= length) fail("JSON_SYNTAX", "unterminated string", start);
      const c = text.charCodeAt(i);
      if (c === QUOTE) break;
      if (c < 0x20) fail("JSON_SYNTAX", `unescaped ${describe(i)} in string`, i);
      if (c >= 0xd800 && c <= 0xdfff) {
        // Well-formed text only: a surrogate must be half of a pair.
        const next = text.charCodeAt(i + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) {
          fail("JSON_SYNTAX", "unpaired surrogate in string", i);
        }
        i += 2;
        continue;
      }
      if (c !== BACKSLASH) {
        i++;
        continue;
      }
      out += text.slice(chunk, i);
      const escaped = text.charCodeAt(i + 1);
      const simple = simpleEscapes.get(escaped);
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else if (escaped === 0x75) {
        const unit = readHex4(i + 2);
        i += 6;
        if (unit >= 0xdc00 && unit <= 0xdfff) {
          fail("JSON_SYNTAX", "lone low surrogate in \\u escape", i - 6);
        }
        if (unit >= 0xd800 && unit <= 0xdbff) {
          if (text.charCodeAt(i) !== BACKSLASH || text.charCodeAt(i + 1) !== 0x75) {
            fail("JSON_SYNTAX", "high surrogate \\u escape not followed by a low one", i - 6);
          }
          const low = readHex4(i + 2);
          if (low < 0xdc00 || low > 0xdfff) {
            fail("JSON_SYNTAX", "high surrogate \\u escape not followed by a low one", i - 6);
          }
          out += String.fromCharCode(unit, low);
          i += 6;
        } else {
          out += String.fromCharCode(unit);
        }
      } else {
        fail("JSON_SYNTAX", `invalid escape \\${describe(i + 1)} in string`, i);
      }
      chunk = i;
    }
    const value = out + text.slice(chunk, i);
    i++;
    return value;
  }

  function readDigits(what: string): void {
    if (!isDigit(text.charCodeAt(i))) fail("JSON_SYNTAX", `expected a digit in ${what}`, i);
    while (isDigit(text.charCodeAt(i))) i++;
  }

  function readNumber(): number | bigint {
    const start = i;
    if (text.charCodeAt(i) === MINUS) i++;
    if (text.charCodeAt(i) === ZERO) {
      i++;
      if (isDigit(text.charCodeAt(i))) fail("JSON_SYNTAX", "leading zero in number", start);
    } else {
      readDigits("number");
    }
    const integerEnd = i;
    if (text.charCodeAt(i) === DOT) {
      i++;
      readDigits("fraction");
    }
    const e = text.charCodeAt(i) | 0x20;
    if (e === 0x65) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === PLUS || sign === MINUS) i++;
      readDigits("exponent");
    }
    const literal = text.slice(start, i);
    const isInteger = i === integerEnd && literal !== "-0";
    if (!isInteger) {
      if (integersOnly) fail("JSON_NOT_INTEGER", `expected an integer, found ${literal}`, start);
      const value = Number(literal);
      if (!Number.isFinite(value)) fail("JSON_SYNTAX", `number ${literal} out of range`, start);
      return value;
    }
    // Up to 15 digits always fit a double exactly; longer ones go through BigInt.
    if (literal.length <= 15) return Number(literal);
    if (literal.length > MAX_INTEGER_DIGITS) {
      fail("JSON_SYNTAX", `integer of ${literal.length} digits is too long`, start);
    }
    const big = BigInt(literal);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }

  function readLiteral(word: string, value: JsonValue): JsonValue {
    if (!text.startsWith(word, i)) fail("JSON_SYNTAX", `unexpected ${describe(i)}`, i);
    i += word.length;
    return value;
  }

  /** Reads `"key":` into the object frame on top, refusing a key the object already has. */
  function readKey(frame: ObjectFrame): void {
    frame.key = undefined;
    skipWhitespace();
    if (text.charCodeAt(i) !== QUOTE) {
      fail("JSON_SYNTAX", `expected a string key, found ${describe(i)}`, i);
    }
    const at = i;
    const key = readString();
    frame.key = key;
    if (frame.value.has(key))
      fail("JSON_DUPLICATE_KEY", `duplicate key ${JSON.stringify(key)}`, at);
    expect(COLON, "':'");
  }

  let value: JsonValue;
  for (;;) {
    // Read one value; a container that opens pushes a frame and reads its first member next.
    skipWhitespace();
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (stack.length >= maxDepth) {
        fail("JSON_TOO_DEEP", `nesting deeper than ${maxDepth} levels`, i);
      }
      const isObject = c === OPEN_BRACE;
      const container: JsonObject | JsonValue[] = isObject ? new Map() : [];
      positions?.set(container, i);
      i++;
      skipWhitespace();
      if (text.charCodeAt(i) === (isObject ? CLOSE_BRACE : CLOSE_BRACKET)) {
        i++;
        value = container;
      } else if (container instanceof Map) {
        const frame: ObjectFrame = { kind: "object", value: container, key: undefined };
        stack.push(frame);
        readKey(frame);
        continue;
      } else {
        stack.push({ kind: "array", value: container });
        continue;
      }
    } else if (c === QUOTE) {
      value = readString();
    } else if (c === MINUS || isDigit(c)) {
      value = readNumber();
    } else if (c === 0x74) {
      value = readLiteral("true", true);
    } else if (c === 0x66) {
      value = readLiteral("false", false);
    } else if (c === 0x6e) {
      value = readLiteral("null", null);
    } else {
      fail("JSON_SYNTAX", `expected a value, found ${describe(i)}`, i);
    }

    // Hand the finished value to its container; close containers that end here.
    let next = false;
    while (!next) {
      const frame = stack.at(-1);
      if (frame === undefined) {
        skipWhitespace();
        if (i < length) fail("JSON_SYNTAX", `unexpected ${describe(i)} after the JSON value`, i);
        return value;
      }
      if (frame.kind === "object") frame.value.set(frame.key!, value);
      else frame.value.push(value);
      skipWhitespace();
      const separator = text.charCodeAt(i);
      const close = frame.kind === "object" ? CLOSE_BRACE : CLOSE_BRACKET;
      if (separator === COMMA) {
        i++;
        if (frame.kind === "object") readKey(frame);
        next = true;
      } else if (separator === close) {
        i++;
        stack.pop();
        value = frame.value;
      } else {
        const expected = frame.kind === "object" ? "',' or '}'" : "',' or ']'";
        fail("JSON_SYNTAX", `expected ${expected}, found ${describe(i)}`, i);
      }
    }
  }
}
