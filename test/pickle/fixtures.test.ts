import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PickleError } from "../../src/errors.js";
import { Op } from "../../src/formats/pickle/opcodes.js";
import { unpickle } from "../../src/formats/pickle/unpickler.js";
import { makeTuple, type PyValue } from "../../src/formats/pickle/values.js";
import { mismatch } from "./expected.js";

/** Pickles written by CPython (test/fixtures/pickle/generate.py), checked against what Python decoded. */

const folder = new URL("../fixtures/pickle/", import.meta.url);
const read = (file: string) => new Uint8Array(readFileSync(new URL(file, folder)));

interface Case {
  files: string[];
  // biome-ignore lint/suspicious/noExplicitAny: JSON written by Python.
  expect: any;
  persistent?: boolean;
}
const expected: {
  opcodes: string[];
  cases: Case[];
  handmade: Case[];
  refused: { file: string; code: string }[];
} = JSON.parse(readFileSync(new URL("expected.json", folder), "utf8"));

/** The generator's reference Unpickler returns ("pid", pid) for a persistent id. */
const persistentLoad = { load: (pid: PyValue): PyValue => makeTuple(["pid", pid]) as PyValue };

function check(file: string, want: Case["expect"], persistent = false) {
  const bytes = read(file);
  const result = unpickle(bytes, { file, persistentLoad: persistent ? persistentLoad : undefined });
  expect(mismatch(result.value, want)).toBeUndefined();
  expect(result.end).toBe(bytes.length);
}

describe("pickles written by CPython, protocols 0-5", () => {
  for (const entry of expected.cases) {
    for (const file of entry.files) it(file, () => check(file, entry.expect));
  }

  it("exercise every opcode CPython reads (as CPython's disassembler counts them)", () => {
    // Refused by design or Python 2 only: hostile.test.ts and globals.test.ts assemble these.
    const elsewhere = ["EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER", "INST", "OBJ"];
    const wanted = Object.keys(Op).filter((name) => !elsewhere.includes(name));
    expect(wanted.filter((name) => !expected.opcodes.includes(name))).toEqual([]);
  });

  it("covers every protocol", () => {
    const files = expected.cases.flatMap((entry) => entry.files);
    for (const protocol of [0, 1, 2, 3, 4, 5]) {
      expect(files.filter((file) => file.endsWith(`_p${protocol}.pkl`)).length).toBeGreaterThan(15);
    }
  });
});

describe("hand-written pickles (Python 2 strings, text opcodes, frames, memo)", () => {
  for (const entry of expected.handmade) {
    const file = entry.files[0]!;
    it(file, () => check(file, entry.expect, entry.persistent));
  }
});

describe("pickles CPython writes that loadout refuses", () => {
  for (const { file, code } of expected.refused) {
    it(`${file} → ${code}`, () => {
      expect(() => unpickle(read(file), { file })).toThrowError(expect.objectContaining({ code }));
    });
  }
});

describe("truncation", () => {
  // A caller reading progressively retries on TRUNCATED: every strict prefix must say so.
  const samples = [
    "nested_p0.pkl",
    "nested_p1.pkl",
    "nested_p2.pkl",
    "strings_p3.pkl",
    "numpy_p4.pkl",
    "numpy_p5.pkl",
    "instances_p4.pkl",
  ];
  for (const file of samples) {
    it(`every prefix of ${file} is TRUNCATED`, () => {
      const bytes = read(file);
      for (let length = 0; length < bytes.length; length++) {
        let error: unknown;
        try {
          unpickle(bytes.subarray(0, length), { file });
        } catch (caught) {
          error = caught;
        }
        expect(error, `prefix of ${length} bytes`).toBeInstanceOf(PickleError);
        expect((error as PickleError).code, `prefix of ${length} bytes`).toBe("TRUNCATED");
      }
    });
  }
});
