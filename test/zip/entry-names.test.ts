import { describe, expect, it } from "vitest";
import { readZipArchive } from "../../src/formats/zip/zip.js";
import { buildZip, errorOf, memory } from "./helpers.js";

const utf8 = new TextEncoder();
const cp437 = (...codes: number[]) => new Uint8Array(codes);

/**
 * ASCII names are cut out of the directory read as text, non-ASCII ones decoded from a copy of
 * their bytes; either way the local header must repeat the central directory's bytes exactly.
 */
describe("zip entry names and their local headers", () => {
  it("reads ASCII, UTF-8 and CP437 names side by side, each entry's data at its own offset", async () => {
    const zip = await readZipArchive(
      memory(
        buildZip([
          { name: "archive/data/0", data: "zero" },
          { name: "naïve/ü", data: "utf8" },
          // "café" in CP437 (0x82 is é), without the UTF-8 flag.
          { name: "cafe", nameBytes: cp437(0x63, 0x61, 0x66, 0x82), flags: 0, data: "cp437" },
          { name: "archive/version", data: "3" },
        ]),
      ),
    );
    expect(zip.entries.map((e) => e.name)).toEqual([
      "archive/data/0",
      "naïve/ü",
      "café",
      "archive/version",
    ]);
    const read = async (name: string) =>
      new TextDecoder().decode(await zip.readEntry(zip.find(name)!));
    expect(await read("archive/data/0")).toBe("zero");
    expect(await read("naïve/ü")).toBe("utf8");
    expect(await read("café")).toBe("cp437");
    expect(await read("archive/version")).toBe("3");
  });

  it("refuses a local header whose name differs, for ASCII and non-ASCII names", async () => {
    for (const [name, localName] of [
      ["archive/data/0", "archive/data/1"],
      ["naïve/ü", "naïve/u"],
    ]) {
      const zip = await readZipArchive(
        memory(
          buildZip([{ name: name!, data: "x", local: { nameBytes: utf8.encode(localName) } }]),
        ),
      );
      const error = await errorOf(() => zip.readEntry(zip.entries[0]!));
      expect(error.code).toBe("LOCAL_HEADER_MISMATCH");
      expect(error.message).toContain("name");
    }
  });

  it("names an entry's source after the archive and the entry", async () => {
    const zip = await readZipArchive(
      memory(buildZip([{ name: "archive/data/12", data: "abcd" }]), "model.pt"),
    );
    const source = zip.entrySource(zip.entries[0]!);
    expect(source.name).toBe("model.pt:archive/data/12");
    const error = await errorOf(() => source.read(2, 3));
    expect(error.code).toBe("OUT_OF_BOUNDS");
    expect(error.message).toContain("model.pt:archive/data/12");
  });
});
