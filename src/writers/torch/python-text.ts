/** Python's text encodings where they differ from what TextEncoder/TextDecoder offer. */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const encoder = new TextEncoder();

/**
 * UTF-8 as Python's `str.encode("utf-8", "surrogatepass")`, which is how pickle writes strings: a
 * lone surrogate (a JavaScript string may hold one, as may a Python str) becomes its own three
 * bytes instead of U+FFFD, so it survives the round trip.
 */
export function encodeUtf8SurrogatePass(text: string): Uint8Array {
  if (!LONE_SURROGATE.test(text)) return encoder.encode(text);
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      bytes.push(...encoder.encode(text.slice(i, i + 2)));
      i++;
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      bytes.push(0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f));
    } else {
      bytes.push(...encoder.encode(text[i]!));
    }
  }
  return new Uint8Array(bytes);
}
