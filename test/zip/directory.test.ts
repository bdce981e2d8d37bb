import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { entryNameProblem } from "../../src/formats/zip/names.js";
import { readZipArchive } from "../../src/formats/zip/zip.js";
import { buildZip, errorOf, memory, type TestEntry } from "./helpers.js";

/**
 * The central directory is parsed into columns and its names indexed from their bytes (no
 * string per entry). These tests hold that to what a Map of decoded names would answer.
 */

const open = (entries: TestEntry[], options = {}) =>
  readZipArchive(memory(buildZip(entries, options)));

/** Names from a small alphabet, so that equal names, shared prefixes and hash collisions are common. */
const shortName = fc
  .array(fc.constantFrom("a", "b", "/", "0", "1", "é", "ü"), { minLength: 1, maxLength: 6 })
  .map((chars) => `d/${chars.join("")}`);

describe("finding entries by name", () => {
  it("finds exactly the entries a Map of their names finds, by whole name or prefix and rest", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(shortName, { minLength: 1, maxLength: 40 }),
        fc.array(shortName, { maxLength: 20 }),
        fc.nat(),
        async (names, others, cut) => {
          const archive = await open(names.map((name) => ({ name, data: name })));
          const byName = new Map(names.map((name, index) => [name, index]));
          expect(archive.entryCount).toBe(names.length);
          for (const name of [...names, ...others]) {
            const want = byName.get(name);
            const found = archive.find(name);
            expect(found?.name).toBe(want === undefined ? undefined : names[want]);
            const at = cut % (name.length + 1);
            expect(archive.find(name.slice(at), name.slice(0, at))?.name).toBe(found?.name);
          }
          for (const [index, name] of names.entries()) {
            expect(archive.nameAt(index)).toBe(name);
            expect(archive.entryAt(index).name).toBe(name);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("tells a name's start and end as the name itself does, ASCII or not", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(shortName, { minLength: 1, maxLength: 20 }),
        fc.array(shortName, { maxLength: 10 }),
        async (names, others) => {
          const archive = await open(names.map((name) => ({ name, data: name })));
          for (const [index, name] of names.entries()) {
            // Every start and end of every name, and other strings.
            const texts = [
              ...others,
              ...Array.from({ length: name.length + 1 }, (_, at) => name.slice(0, at)),
            ];
            for (const text of [
              ...texts,
              ...texts.map((t) => name.slice(name.length - t.length)),
            ]) {
              expect(archive.nameStartsWith(index, text), `${name} starts ${text}`).toBe(
                name.startsWith(text),
              );
              expect(archive.nameEndsWith(index, text), `${name} ends ${text}`).toBe(
                name.endsWith(text),
              );
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("reads an entry found by prefix and rest", async () => {
    const archive = await open([
      { name: "archive/data.pkl", data: "p" },
      { name: "archive/data/7", data: "seven" },
    ]);
    const entry = archive.find("7", "archive/data/")!;
    expect(new TextDecoder().decode(await archive.readEntry(entry))).toBe("seven");
    expect(archive.find("8", "archive/data/")).toBeUndefined();
    expect(archive.find("data/7", "archive")).toBeUndefined();
  });

  it("refuses positions outside the archive", async () => {
    const archive = await open([{ name: "a/b", data: "x" }]);
    for (const index of [-1, 1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => archive.entryAt(index)).toThrow(RangeError);
      expect(() => archive.nameAt(index)).toThrow(RangeError);
      expect(() => archive.storedSizeAt(index)).toThrow(RangeError);
      expect(() => archive.nameStartsWith(index, "a")).toThrow(RangeError);
    }
    expect(archive.storedSizeAt(0)).toBe(1);
  });

  it("refuses a name given twice, ASCII or not, wherever the second one is", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(shortName, { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.nat(),
        async (names, pick, at) => {
          const twice = names[pick % names.length]!;
          const all = [...names];
          all.splice(at % (all.length + 1), 0, twice);
          const error = await errorOf(() => open(all.map((name) => ({ name, data: "x" }))));
          expect(error).toBeInstanceOf(ArchiveError);
          expect((error as ArchiveError).code).toBe("DUPLICATE_ENTRY");
          expect((error as ArchiveError).message).toContain(`'${twice}'`);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("checking names", () => {
  it("refuses exactly the ASCII names the name rules refuse", async () => {
    const name = fc
      .array(fc.constantFrom("a", ".", "/", "\\", ":", "\0", "C", "z"), { maxLength: 6 })
      .map((chars) => chars.join(""));
    await fc.assert(
      fc.asyncProperty(name, async (candidate) => {
        const problem = entryNameProblem(candidate);
        const opened = open([{ name: candidate, data: "x" }]);
        if (problem === undefined) expect((await opened).nameAt(0)).toBe(candidate);
        else await expect(opened).rejects.toMatchObject({ code: problem.code });
      }),
      { numRuns: 300 },
    );
  });
});

describe("entry counts", () => {
  it("refuses a count the directory cannot hold before sizing anything by it", async () => {
    const error = await errorOf(() =>
      open([{ name: "a/data.pkl", data: "one" }], { entryCount: 0xffff }),
    );
    expect((error as ArchiveError).code).toBe("ENTRY_COUNT_MISMATCH");
    expect((error as ArchiveError).message).toContain("cannot hold the 65535 entries");
  });
});

describe("finding numbered entries", () => {
  it("finds `prefix` + a number as a lookup of the whole name does, canonical or not", async () => {
    const names = [
      "t/data.pkl",
      "t/data/0",
      "t/data/2",
      "t/data/10",
      "t/data/007",
      "t/data/",
      "t/data/3x",
      "u/data/1",
      "t/data/99",
    ];
    const archive = await open(names.map((name) => ({ name, data: name })));
    const queries = ["0", "1", "2", "3", "10", "007", "7", "", "3x", "99", "100", "-1", "01"];
    for (const prefix of ["t/data/", "u/data/", "t/", "v/data/"]) {
      for (const query of queries) {
        const whole = names.includes(prefix + query) ? prefix + query : undefined;
        expect(archive.find(query, prefix)?.name, `${prefix} + ${query}`).toBe(whole);
        expect(archive.find(prefix + query)?.name).toBe(whole);
      }
    }
  });

  it("reads a numbered entry's bytes", async () => {
    const entries = Array.from({ length: 300 }, (_, n) => ({ name: `a/data/${n}`, data: `#${n}` }));
    const archive = await open([{ name: "a/data.pkl", data: "p" }, ...entries]);
    for (const n of [0, 1, 99, 299]) {
      const entry = archive.find(String(n), "a/data/")!;
      expect(new TextDecoder().decode(await archive.readEntry(entry))).toBe(`#${n}`);
    }
    expect(archive.find("300", "a/data/")).toBeUndefined();
  });
});
