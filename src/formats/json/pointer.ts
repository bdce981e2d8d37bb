/** JSON Pointers (RFC 6901): how parse errors say where in a document they happened. */

/** The pointer of `path` (object keys and array indices); "" is the whole document. */
export function jsonPointer(path: readonly (string | number)[]): string {
  let pointer = "";
  for (const segment of path) {
    pointer += `/${String(segment).replaceAll("~", "~0").replaceAll("/", "~1")}`;
  }
  return pointer;
}

/** The segments of a pointer made by `jsonPointer` (indices come back as strings). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"));
}
