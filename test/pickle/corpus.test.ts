import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LoadoutError } from "../../src/errors.js";
import { unpickle } from "../../src/formats/pickle/unpickler.js";

/**
 * The outside corpora (real and hostile files nobody on this project wrote): every bare pickle
 * whose EXPECT.tsv line says refuse must be refused with a LoadoutError, every one that says open
 * must open, and the rest must end in one or the other (never a plain Error or a hang).
 */

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const corpora = resolve(repoRoot, "../shared/corpora");
const available = existsSync(join(corpora, "EXPECT.tsv"));

interface Entry {
  file: string;
  expect: string;
  note: string;
}

function entries(): Entry[] {
  const lines = readFileSync(join(corpora, "EXPECT.tsv"), "utf8").trim().split("\n").slice(1);
  return lines
    .map((line) => line.split("\t"))
    .map(([file = "", expect = "", note = ""]) => ({ file, expect, note }))
    .filter(({ file }) => /\.(pkl|pickle)$/.test(file));
}

/**
 * A bare pickle file is read to its end: a second pickle after the first STOP is unpickled too
 * (a benign first pickle can hide a hostile second one, as picklescan's malicious6.pkl does).
 */
function unpickleFile(bytes: Uint8Array, file: string): void {
  let start = 0;
  do start = unpickle(bytes, { file }, start).end;
  while (start < bytes.length);
}

function outcome(file: string): "open" | LoadoutError {
  try {
    unpickleFile(new Uint8Array(readFileSync(join(corpora, file))), file);
    return "open";
  } catch (error) {
    if (error instanceof LoadoutError) return error;
    throw error;
  }
}

describe("outside corpora: bare pickles", () => {
  if (!available) {
    it("is skipped: the corpora folder is absent", () => {
      console.warn(`corpus tests skipped: ${corpora} not found`);
    });
    return;
  }

  for (const { file, expect: want, note } of entries()) {
    it(`${want}: ${file} (${note})`, () => {
      const result = outcome(file);
      if (want === "open") expect(result).toBe("open");
      else if (want === "refuse") expect(result).toBeInstanceOf(LoadoutError);
      else expect(result === "open" || result instanceof LoadoutError).toBe(true);
    });
  }

  it("finds the pickles it should", () => {
    const all = entries();
    expect(all.filter((entry) => entry.expect === "refuse").length).toBeGreaterThan(50);
    expect(all.filter((entry) => entry.expect === "open").length).toBeGreaterThan(5);
  });
});
