import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { readZipArchive } from "../../src/formats/zip/zip.js";
import { buildZip, memory, toBytes } from "./helpers.js";

/** Local headers with short, long and no extra fields (padding for alignment, zip64 sizes). */
describe("local headers and their extra fields", () => {
  const data = Uint8Array.from({ length: 100 }, (_, i) => i);

  it.each([
    ["64-byte alignment", 64, false],
    ["4096-byte alignment: a long extra field", 4096, false],
    ["4096-byte alignment with zip64 sizes", 4096, true],
    ["no padding at all", 0, false],
  ])("reads the data after a local header with %s", async (_, align, zip64) => {
    const zip = await readZipArchive(
      memory(buildZip([{ name: "archive/data/0", data, align, zip64 }])),
    );
    const slice = zip.entrySource(zip.entries[0]!);
    expect([...(await slice.read(0, 100))]).toEqual([...data]);
    if (align > 0) expect((await slice.origin()) % align).toBe(0);
  });

  it("compares the name after a long extra field too", async () => {
    const bytes = buildZip([
      {
        name: "archive/data/0",
        data,
        align: 4096,
        local: { nameBytes: toBytes("archive/data/1") },
      },
    ]);
    const zip = await readZipArchive(memory(bytes));
    const error = await zip
      .entrySource(zip.entries[0]!)
      .read(0, 1)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as ArchiveError).code).toBe("LOCAL_HEADER_MISMATCH");
    expect((error as ArchiveError).message).toContain("name");
  });
});
