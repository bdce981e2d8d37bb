import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { isLoadoutError } from "../../src/errors.js";
import { isLegacyTar, isTorchLegacy } from "../../src/formats/torch/detect.js";
import { openTorchLegacy } from "../../src/formats/torch/torch-legacy.js";
import { openTorchZip } from "../../src/formats/torch/torch-zip.js";
import { FileSource } from "../../src/io/file-source.js";
import { Tensor } from "../../src/tensors/tensor.js";
import {
  corpora,
  type ExpectedLeaf,
  expectLeaves,
  hasCorpora,
  leaves,
  readJson,
  repoRoot,
  withFile,
} from "./helpers.js";

/**
 * Real torch files of many versions from the shared corpora, read as real PyTorch (torch.load,
 * weights_only=True) reads them: expected-corpus.json is written by expected-corpus.py.
 */

if (!hasCorpora) console.warn(`torch corpus tests: ${corpora} is absent; they are skipped`);

const expected = readJson<{ files: Record<string, ExpectedLeaf[]> }>(
  path.join(repoRoot, "test/torch/expected-corpus.json"),
);

describe.skipIf(!hasCorpora)("real torch files (corpora)", () => {
  for (const [name, leaves] of Object.entries(expected.files)) {
    const legacy = path.basename(name).startsWith("legacy_");
    it(`reads ${name} as torch does`, async () => {
      await withFile(
        path.join(corpora, name),
        (source) => (legacy ? openTorchLegacy(source) : openTorchZip(source)),
        async (opened) => {
          expect(opened.format).toBe(legacy ? "torch-legacy" : "torch-zip");
          await expectLeaves(opened.root, leaves);
        },
      );
    });
  }

  it("reads the zip details torch writes", async () => {
    await withFile(
      path.join(corpora, "real/zip_rebuild_parameter.pt"),
      openTorchZip,
      async (opened) => {
        expect(opened.details).toEqual({
          folder: "parameter",
          byteOrder: "little",
          formatVersion: 1,
          storageAlignment: 64,
          version: 3,
          protocol: 2,
        });
        // .data/serialization_id and the format records are torch's own: no other records.
        expect([...(opened.records?.keys() ?? [])]).toEqual([]);
      },
    );
    await withFile(path.join(corpora, "real/zip_float_BE_BOM.pt"), openTorchZip, async (opened) => {
      expect(opened.details).toMatchObject({ folder: "tensor.float.BE.BOM", byteOrder: "big" });
    });
    await withFile(
      path.join(corpora, "real/zip_torch1.x_archive_prefix.bin"),
      openTorchZip,
      async (opened) => {
        expect(opened.details).toEqual({
          folder: "archive",
          byteOrder: "little",
          version: 3,
          protocol: 2,
        });
      },
    );
  });

  it("recognises legacy files and the legacy tar layout by their first bytes", async () => {
    const first = async (name: string) => {
      const source = await FileSource.open(path.join(corpora, name));
      try {
        return await source.read(0, Math.min(4096, source.size));
      } finally {
        await source.close();
      }
    };
    for (const name of Object.keys(expected.files)) {
      const bytes = await first(name);
      expect(isTorchLegacy(bytes), name).toBe(path.basename(name).startsWith("legacy_"));
      expect(isLegacyTar(bytes), name).toBe(false);
    }
    for (const name of [
      "real/tar_format_synthetic_multi_dtype.tar",
      "tracel-ai+burn/crates/burn-store/src/pytorch/tests/reader/test_data/tar_float32.tar",
    ]) {
      const bytes = await first(name);
      expect(isLegacyTar(bytes), name).toBe(true);
      expect(isTorchLegacy(bytes), name).toBe(false);
    }
  });
});

describe.skipIf(!hasCorpora)("EXPECT.tsv: every zip and legacy torch file of the corpora", () => {
  const rows = hasCorpora
    ? readFileSync(path.join(corpora, "EXPECT.tsv"), "utf8")
        .trim()
        .split("\n")
        .slice(1)
        .map((line) => line.split("\t") as [string, string, string])
    : [];

  it("opens what must open (reading every tensor), refuses what must be refused", async () => {
    let checked = 0;
    for (const [name, expect_, note] of rows) {
      const source = await FileSource.open(path.join(corpora, name));
      try {
        const first = await source.read(0, Math.min(4096, source.size));
        const zip = first[0] === 0x50 && first[1] === 0x4b && (first[2] === 3 || first[2] === 5);
        const open = zip ? openTorchZip : isTorchLegacy(first) ? openTorchLegacy : undefined;
        if (!open) continue;
        checked++;
        let outcome: "open" | "refuse";
        try {
          const opened = await open(source);
          for (const leaf of leaves(opened.root).values()) {
            if (leaf instanceof Tensor) await leaf.read();
          }
          outcome = "open";
        } catch (error) {
          expect(isLoadoutError(error), `${name}: ${String(error)}`).toBe(true);
          outcome = "refuse";
        }
        const allowed = expect_ === "bounded" ? ["open", "refuse"] : expect_.split("|");
        expect(allowed, `${name} (${note}) was ${outcome}`).toContain(outcome);
      } finally {
        await source.close();
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});
