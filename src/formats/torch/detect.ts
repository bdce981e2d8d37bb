/**
 * Recognising torch's pre-zip formats from a file's first bytes: the legacy format (torch
 * 0.1.10-1.5, and `_use_new_zipfile_serialization=False`) starts with a pickled magic number;
 * the pre-2017 format is a tar archive.
 */

/** torch's legacy magic number, 0x1950a86a20f9469cfc6c, as pickle's LONG1 stores it (little-endian). */
const MAGIC_LONG1 = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
/** The same number as protocol 0/1 pickles write it. */
const MAGIC_TEXT = "L119547037146038801333356";

const PROTO = 0x80;
const FRAME = 0x95;

/** Whether `first` starts with the pickled magic number of torch's legacy format. */
export function isTorchLegacy(first: Uint8Array): boolean {
  let at = 0;
  if (first[at] === PROTO) {
    const protocol = first[at + 1];
    if (protocol === undefined || protocol < 2 || protocol > 5) return false;
    at += 2;
    // Protocol 4+ frames the stream: FRAME and an 8-byte length come first.
    if (first[at] === FRAME) at += 9;
    return MAGIC_LONG1.every((byte, i) => first[at + i] === byte);
  }
  const text = MAGIC_TEXT.split("").map((c) => c.charCodeAt(0));
  if (!text.every((byte, i) => first[i] === byte)) return false;
  at = text.length;
  if (first[at] === 0x4c) at++; // Python 2's trailing 'L'
  return first[at] === 0x0a && first[at + 1] === 0x2e;
}

const USTAR = [0x75, 0x73, 0x74, 0x61, 0x72]; // "ustar"
const TAR_FIRST_MEMBERS = ["sys_info", "pickle"];

/**
 * Whether `first` is a tar archive as pre-2017 torch (< 0.1.10) wrote checkpoints: a ustar
 * magic at offset 257, or a first member named `sys_info` or `pickle`.
 */
export function isLegacyTar(first: Uint8Array): boolean {
  if (USTAR.every((byte, i) => first[257 + i] === byte)) return true;
  if (first.length < 512) return false;
  return TAR_FIRST_MEMBERS.some(
    (name) =>
      name.split("").every((c, i) => first[i] === c.charCodeAt(0)) && first[name.length] === 0,
  );
}
