/**
 * Bytes as Latin-1 text (each byte the code point of the same value), which is also how ASCII
 * bytes read as UTF-8 or CP437. Opening a checkpoint turns tens of thousands of short byte runs
 * into strings (zip entry names, pickled keys), so this is on the path that decides how fast a
 * checkpoint opens.
 */

/** Decodes `bytes[start..end)` as Latin-1. */
export type Latin1Decoder = (bytes: Uint8Array, start: number, end: number) => string;

/** Characters per String.fromCharCode call: its arguments go on the stack. */
const CHUNK = 4096;

/** Latin-1 in plain JavaScript: one String.fromCharCode call per 4 KiB. */
export function portableLatin1Text(bytes: Uint8Array, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i += CHUNK) {
    const part = bytes.subarray(i, Math.min(i + CHUNK, end));
    text += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return text;
}

let hostLatin1: Latin1Decoder | undefined;

/**
 * Makes `latin1Text` use the host's own decoder (the Node entry point passes Buffer's, about
 * four times faster than either String.fromCharCode or a TextDecoder call on short strings).
 * It is checked on a sample first, and refused (the portable one stays) if it decodes wrongly.
 */
export function useHostLatin1(decoder: Latin1Decoder | undefined): void {
  hostLatin1 = decoder !== undefined && decodesSample(decoder) ? decoder : undefined;
}

function decodesSample(decoder: Latin1Decoder): boolean {
  const sample = new Uint8Array([0x00, 0x41, 0x7f, 0x80, 0xe9, 0xff, 0x2e]);
  try {
    return decoder(sample, 1, 6) === "A\u007f\u0080\u00e9\u00ff";
  } catch {
    return false;
  }
}

/** `bytes[start..end)` as Latin-1 text. */
export function latin1Text(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return hostLatin1 !== undefined
    ? hostLatin1(bytes, start, end)
    : portableLatin1Text(bytes, start, end);
}

/** Up to this length, a string built a character at a time beats a call into the host. */
const TINY_TEXT = 5;

/** Below this length, a string built a character at a time beats a TextDecoder call. */
const SHORT_TEXT = 12;

const utf8 = new TextDecoder();

/**
 * `bytes[start..end)`, which the caller has checked to be ASCII (isAscii), as text. Short runs
 * ('cpu', 'storage', a small key) a character at a time, cheaper than a call into the host for
 * a handful of characters; longer ones by the host decoder, or else by TextDecoder (ASCII reads
 * the same in UTF-8), both faster than String.fromCharCode.apply on a subarray.
 */
export function asciiText(bytes: Uint8Array, start: number, end: number): string {
  const length = end - start;
  if (length > TINY_TEXT && hostLatin1 !== undefined) return hostLatin1(bytes, start, end);
  if (length > SHORT_TEXT) return utf8.decode(bytes.subarray(start, end));
  // One loop for every short length, not a case per length: optimized code that had met only
  // some lengths was thrown away at the first string of another.
  let text = "";
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

/** Whether `bytes[start..end)` is all ASCII (so it reads the same as Latin-1, UTF-8 and CP437). */
export function isAscii(bytes: Uint8Array, start: number, end: number): boolean {
  // One OR per byte and one test at the end: no branch per byte.
  let all = 0;
  for (let i = start; i < end; i++) all |= bytes[i]!;
  return all < 0x80;
}
