/**
 * The kept instances (*_SHAPE_KEEPER) exist so that the hidden classes of the objects an open
 * makes by the ten thousand outlive each checkpoint, and V8's code optimized for them with it.
 * That holds only while real objects share a kept instance's class: a real object whose field
 * holds a value of another representation (a boxed number where the kept one had a small
 * integer) moves to a new class, which dies with it. The zip64 directory did, and every garbage
 * collection then threw the zip code's optimized code away. Checked in a child process, with
 * V8's intrinsics enabled, over one file of each format.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureDist, ROOT } from "../dist.js";

const CHILD = fileURLToPath(new URL("./hidden-classes-child.mjs", import.meta.url));
const FILES = [
  "test/fixtures/torch/lightning.ckpt", // zip64 end records
  "test/fixtures/torch/net_bigendian.pt", // plain end record, big-endian
  "test/fixtures/torch/net_legacy.pt",
  "test/fixtures/safetensors/basic.safetensors",
];

interface Shared {
  file: string;
  kind: string;
  shared: boolean;
}

describe("kept instances", () => {
  let results: Shared[] = [];

  beforeAll(async () => {
    await ensureDist(["dist/node.js", "dist/checkpoint/listed-tensor.js"], ["src"]);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--allow-natives-syntax", CHILD, ...FILES],
        { cwd: ROOT },
        (error, out) => (error ? reject(error) : resolve(out)),
      );
    });
    results = JSON.parse(stdout) as Shared[];
  }, 60_000);

  it("cover every kind of object an open makes per archive or per tensor", () => {
    const kinds = (file: string) => results.filter((r) => r.file === file).map((r) => r.kind);
    const zipKinds = ["tensor", "listedTensor", "zipStorage", "zipStorageGroup", "zipArchive"];
    expect(kinds(FILES[0]!)).toEqual([...zipKinds, "zipDirectory", "zipNameIndex"]);
    expect(kinds(FILES[1]!)).toEqual([...zipKinds, "zipDirectory", "zipNameIndex"]);
    expect(kinds(FILES[2]!)).toEqual(["tensor", "listedTensor", "legacyStorage"]);
    expect(kinds(FILES[3]!)).toEqual(["tensor", "listedTensor"]);
  });

  it("share their hidden class with the objects real files make", () => {
    expect(results.filter((r) => !r.shared)).toEqual([]);
  });
});
