import { ArchiveError, type ErrorLocation } from "../../errors.js";
import { asciiText, isAscii } from "../latin1.js";

/** Code page 437 for bytes 0x80-0xFF (0x00-0x7F read as ASCII, as Python's zipfile does). */
const CP437_HIGH =
  "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** An entry name as zip stores it: UTF-8 when general-purpose flag bit 11 is set, else CP437. */
export function decodeEntryName(bytes: Uint8Array, isUtf8: boolean, where: ErrorLocation): string {
  // ASCII reads the same in both, and most names are ASCII: no decoder call per name.
  if (isAscii(bytes, 0, bytes.length)) return asciiText(bytes, 0, bytes.length);
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
  return decodeCp437(bytes);
}

/** CP437 bytes with at least one above 0x7F. */
function decodeCp437(bytes: Uint8Array): string {
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
  const problem = entryNameProblem(name);
  if (problem === undefined) return;
  throw new ArchiveError(
    problem.code,
    `unsafe zip entry name '${printable(name)}': ${problem.why}`,
    {
      ...where,
      hint: "The archive is corrupt or was crafted; torch.save never writes such names.",
    },
  );
}

/** What is wrong with `name`, checked in the order the codes are documented; undefined if fine. */
export function entryNameProblem(name: string): { code: string; why: string } | undefined {
  if (name.length === 0) return { code: "BAD_ENTRY_NAME", why: "it is empty" };
  if (name.includes("\0")) return { code: "NUL_IN_NAME", why: "it contains a NUL character" };
  if (name.includes("\\")) return { code: "BACKSLASH_IN_NAME", why: "it contains a backslash" };
  if (name.startsWith("/") || hasDrivePrefix(name)) {
    return { code: "ABSOLUTE_ENTRY_NAME", why: "it is absolute" };
  }
  if (hasParentSegment(name))
    return { code: "PARENT_SEGMENT_IN_NAME", why: "it has a '..' segment" };
  return undefined;
}

/** `C:` and the like: /^[A-Za-z]:/ without a regular expression per entry. */
function hasDrivePrefix(name: string): boolean {
  const letter = name.charCodeAt(0) | 0x20;
  return name.charCodeAt(1) === 0x3a && letter >= 0x61 && letter <= 0x7a;
}

/** Whether a `/`-separated segment is exactly `..`: name.split("/").includes("..") without the array. */
function hasParentSegment(name: string): boolean {
  for (let at = name.indexOf(".."); at >= 0; at = name.indexOf("..", at + 1)) {
    const startsSegment = at === 0 || name.charCodeAt(at - 1) === 0x2f;
    const endsSegment = at + 2 === name.length || name.charCodeAt(at + 2) === 0x2f;
    if (startsSegment && endsSegment) return true;
  }
  return false;
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
