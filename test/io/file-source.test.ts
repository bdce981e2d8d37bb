import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OutOfBoundsError } from "../../src/errors.js";
import { FileSource } from "../../src/io/file-source.js";

const folder = mkdtempSync(join(tmpdir(), "loadout-file-source-"));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** Byte i of the test file is (i * 7 + 3) mod 256: any range's expected content by arithmetic. */
function pattern(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff);
}

describe("FileSource", () => {
  const size = 200_000;
  const path = join(folder, "data.bin");
  writeFileSync(path, pattern(size));

  // Reads up to 64 KiB are synchronous, larger ones go through the thread pool: both must agree.
  it.each([
    ["a small read", 10, 30],
    ["a read of exactly 64 KiB", 5, 64 << 10],
    ["a large read", 1, 150_000],
    ["the last byte", size - 1, 1],
  ])("reads %s at the right offset", async (_, offset, length) => {
    const source = await FileSource.open(path);
    try {
      const expected = pattern(size).subarray(offset, offset + length);
      expect(await source.read(offset, length)).toEqual(expected);
      const into = new Uint8Array(length);
      await source.readInto(offset, into);
      expect(into).toEqual(expected);
      expect(source.bytesRead).toBe(2 * length);
    } finally {
      await source.close();
    }
  });

  it("refuses reads past the end and after close", async () => {
    const source = await FileSource.open(path);
    await expect(source.read(size - 10, 11)).rejects.toBeInstanceOf(OutOfBoundsError);
    await source.close();
    await expect(source.read(0, 1)).rejects.toMatchObject({ code: "CLOSED" });
  });

  it.each([
    ["small", 100],
    ["large", 100_000],
  ])("reports a file truncated while open (%s read)", async (_, length) => {
    const shrinking = join(folder, `shrinking-${length}.bin`);
    writeFileSync(shrinking, pattern(size));
    const source = await FileSource.open(shrinking);
    try {
      truncateSync(shrinking, 50_000);
      await expect(source.read(60_000, length)).rejects.toMatchObject({
        code: "TRUNCATED",
        offset: 60_000,
      });
    } finally {
      await source.close();
    }
  });
});
