import { ArchiveError, type ErrorLocation } from "../../errors.js";

/** Code page 437 for bytes 0x80-0xFF (0x00-0x7F read as ASCII, as Python's zipfile does). */
const CP437_HIGH =
  "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** An entry name as zip stores it: UTF-8 when general-purpose flag bit 11 is set, else CP437. */
export function decodeEntryName(bytes: Uint8Array, isUtf8: boolean, where: ErrorLocation): string {
  if (isUtf8) {
    try {
      return utf8.decode(bytes);
    } catch (cause) {
      throw new ArchiveError("BAD_ENTRY_NAME", "zip entry name is flagged UTF-8 but is not", {
        ...where,
        cause,
      });
    }
  }
  let name = "";
  for (const byte of bytes)
    name += byte < 0x80 ? String.fromCharCode(byte) : CP437_HIGH[byte - 0x80];
  return name;
}

/**
 * Refuses names that could escape a folder if anything ever extracted the archive, or that
 * different tools would read differently: absolute paths, `..` segments, backslashes, NUL.
 */
export function checkEntryName(name: string, where: ErrorLocation): void {
  const refuse = (code: string, why: string) => {
    throw new ArchiveError(code, `unsafe zip entry name '${printable(name)}': ${why}`, {
      ...where,
      hint: "The archive is corrupt or was crafted; torch.save never writes such names.",
    });
  };
  if (name.length === 0) refuse("BAD_ENTRY_NAME", "it is empty");
  if (name.includes("\0")) refuse("NUL_IN_NAME", "it contains a NUL character");
  if (name.includes("\\")) refuse("BACKSLASH_IN_NAME", "it contains a backslash");
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name))
    refuse("ABSOLUTE_ENTRY_NAME", "it is absolute");
  if (name.split("/").includes("..")) refuse("PARENT_SEGMENT_IN_NAME", "it has a '..' segment");
}

/** The name with control characters escaped, safe to print in a message. */
function printable(name: string): string {
  let out = "";
  for (const c of name) {
    const code = c.charCodeAt(0);
    out += code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : c;
  }
  return out;
}
