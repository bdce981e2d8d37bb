import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { LoadoutError, SafetensorsError } from "../../src/errors.js";
import { openSafetensors } from "../../src/formats/safetensors/safetensors.js";
import { openShardedSafetensors } from "../../src/formats/safetensors/sharded.js";
import type { OpenedFormat } from "../../src/formats/types.js";
import { FileSource } from "../../src/io/file-source.js";
import { dtypeInfo } from "../../src/tensors/dtype.js";
import type { Tensor } from "../../src/tensors/tensor.js";

/**
 * Every safetensors file and shard index in the outside corpora (/work/shared/corpora) gets the
 * verdict EXPECT.tsv gives it; the files rebuilt from the Rust crate's tests get the very error
 * variant the crate returns (their MANIFEST.json).
 */

const CORPORA = "/work/shared/corpora";
const RUST_VECTORS = "huggingface+safetensors/rust_test_vectors";
const present = existsSync(join(CORPORA, "EXPECT.tsv"));
if (!present) console.warn(`safetensors corpus tests skipped: ${CORPORA} is absent`);

interface Case {
  path: string;
  expect: string;
  note: string;
}

function cases(): Case[] {
  if (!present) return [];
  return readFileSync(join(CORPORA, "EXPECT.tsv"), "utf8")
    .split("\n")
    .slice(1)
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [path = "", expect = "", note = ""] = line.split("\t");
      return { path, expect, note };
    })
    .filter(({ path }) => path.endsWith(".safetensors") || path.endsWith(".index.json"));
}

/** Expected Rust verdict ("OK" or a variant name) per rust_test_vectors file. */
function rustVerdicts(): Map<string, string> {
  if (!present) return new Map();
  const manifest: { file: string; expect: string }[] = JSON.parse(
    readFileSync(join(CORPORA, RUST_VECTORS, "MANIFEST.json"), "utf8"),
  );
  return new Map(manifest.map(({ file, expect }) => [file, expect]));
}

async function open(path: string): Promise<{ opened: OpenedFormat; source: FileSource }> {
  const source = await FileSource.open(path);
  try {
    if (!path.endsWith(".index.json")) return { opened: await openSafetensors(source), source };
    const folder = dirname(path);
    const opened = await openShardedSafetensors(source, {
      openRelative: async (name) => {
        const target = resolve(folder, name);
        if (relative(folder, target).startsWith(`..${sep}`)) throw new Error(`${name} escapes`);
        return FileSource.open(target);
      },
    });
    return { opened, source };
  } catch (error) {
    await source.close();
    throw error;
  }
}

async function closeAll({ opened, source }: { opened: OpenedFormat; source: FileSource }) {
  await Promise.all([source.close(), ...opened.ownedSources.map((s) => s.close())]);
}

/** Reads every tensor in its own dtype, and numeric ones converted to float32 too. */
async function readAll(root: Map<string, Tensor>): Promise<void> {
  for (const [key, tensor] of root) {
    const data = await tensor.read();
    expect(data.byteLength, key).toBe(tensor.byteLength);
    const kind = dtypeInfo(tensor.dtype).kind;
    if (kind === "float" || kind === "int" || kind === "uint" || kind === "bool") {
      const converted = await tensor.read({ dtype: "float32" });
      expect(converted.length, key).toBe(tensor.numel);
    }
  }
}

describe.skipIf(!present)("outside safetensors corpora", () => {
  const all = cases();
  const verdicts = rustVerdicts();

  it("has safetensors cases to check, and a Rust verdict for every Rust vector", () => {
    expect(all.length).toBeGreaterThan(30);
    for (const { path } of all.filter((c) => c.path.startsWith(RUST_VECTORS))) {
      expect(verdicts.has(path.slice(RUST_VECTORS.length + 1)), path).toBe(true);
    }
  });

  for (const { path, expect: verdict, note } of all) {
    it(`${verdict}: ${path}`, async () => {
      const full = join(CORPORA, path);
      const rust = path.startsWith(RUST_VECTORS)
        ? verdicts.get(path.slice(RUST_VECTORS.length + 1))
        : undefined;
      if (verdict === "open") {
        const opened = await open(full);
        try {
          expect(opened.opened.root).toBeInstanceOf(Map);
          await readAll(opened.opened.root as Map<string, Tensor>);
        } finally {
          await closeAll(opened);
        }
        if (rust !== undefined) expect(rust).toBe("OK");
        return;
      }
      expect(verdict).toBe("refuse");
      const error = await open(full).then(
        async (opened) => {
          await closeAll(opened);
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error, note).toBeInstanceOf(LoadoutError);
      if (rust !== undefined) {
        expect(error).toBeInstanceOf(SafetensorsError);
        expect((error as SafetensorsError).code).toBe(rust);
        expect((error as SafetensorsError).code).toBe(note);
      }
    });
  }
});
