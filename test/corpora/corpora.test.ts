import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LoadoutError, UnsupportedFormatError } from "../../src/errors.js";
import { openCheckpointFile } from "../../src/node.js";

/**
 * Every file in ../shared/corpora (real and hostile checkpoints from other projects) gets what
 * EXPECT.tsv says, through the same entry point users call: opened and every tensor read, or
 * refused with a typed error; each within 1 s of CPU time and 256 MiB.
 */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const corpora = resolve(repoRoot, "../shared/corpora");
const present = existsSync(join(corpora, "EXPECT.tsv"));

const CPU_LIMIT_MS = 1000;
const MEMORY_LIMIT_BYTES = 256 << 20;

interface Row {
  path: string;
  expect: string;
  note: string;
}

function rows(): Row[] {
  return readFileSync(join(corpora, "EXPECT.tsv"), "utf8")
    .split("\n")
    .slice(1)
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [path, expect, note] = line.split("\t");
      return { path: path!, expect: expect!, note: note ?? "" };
    });
}

function memoryInUse(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

type Outcome = { kind: "open"; tensors: number } | { kind: "refused"; error: LoadoutError };

/** Opens the file and reads every tensor; a typed refusal is an outcome, anything else a failure. */
async function attempt(path: string): Promise<{ outcome: Outcome; cpuMs: number; peak: number }> {
  const baseline = memoryInUse();
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, memoryInUse() - baseline);
  };
  const cpu = process.cpuUsage();
  let outcome: Outcome;
  try {
    const checkpoint = await openCheckpointFile(path);
    try {
      sample();
      const tensors = checkpoint.tensors();
      for (const { tensor } of tensors) {
        await tensor.read();
        sample();
      }
      await checkpoint.trainingCounters();
      await checkpoint.jsonMetadata();
      outcome = { kind: "open", tensors: tensors.length };
    } finally {
      await checkpoint.close();
    }
  } catch (error) {
    if (!(error instanceof LoadoutError)) throw error;
    outcome = { kind: "refused", error };
  }
  sample();
  const used = process.cpuUsage(cpu);
  return { outcome, cpuMs: (used.user + used.system) / 1000, peak };
}

describe.skipIf(!present)("outside corpora (../shared/corpora)", () => {
  const all = present ? rows() : [];

  it("lists files", () => {
    expect(all.length).toBeGreaterThan(100);
  });

  for (const row of all) {
    it(`${row.expect.padEnd(16)} ${row.path}`, async () => {
      const { outcome, cpuMs, peak } = await attempt(join(corpora, row.path));
      const detail =
        outcome.kind === "refused"
          ? `${outcome.error.code}: ${outcome.error.message}`
          : `opened, ${outcome.tensors} tensors`;
      // "bounded": opening with shared references is fine, as is refusing by a limit.
      const allowed = row.expect === "bounded" ? ["open", "refuse"] : row.expect.split("|");
      if (outcome.kind === "open") {
        expect(allowed, `${row.path} opened but must be refused (${row.note})`).toContain("open");
      } else if (allowed.includes("unsupported") && !allowed.includes("refuse")) {
        expect(outcome.error, detail).toBeInstanceOf(UnsupportedFormatError);
      } else {
        expect(allowed, `${row.path} refused: ${detail}`).toContain("refuse");
      }
      expect(cpuMs, `${row.path} took ${cpuMs.toFixed(0)} ms of CPU`).toBeLessThan(CPU_LIMIT_MS);
      expect(peak, `${row.path} used ${(peak / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(
        MEMORY_LIMIT_BYTES,
      );
    });
  }
});

if (!present) {
  console.warn(`SKIPPED: outside corpora not found at ${corpora}; the corpus walk did not run.`);
}
