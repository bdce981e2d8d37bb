import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WriteError } from "../../src/errors.js";
import { openSafetensors } from "../../src/formats/safetensors/safetensors.js";
import { FileSource } from "../../src/io/file-source.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import { openAtomicFile, tempFileName, writeFileAtomic } from "../../src/writers/file-sink.js";
import { writeSafetensors } from "../../src/writers/safetensors-writer.js";
import { concat, memoryTensor } from "./helpers.js";

let folder: string;
beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "loadout-file-sink-"));
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

const bytes = (...values: number[]) => new Uint8Array(values);
const tempFiles = async () => (await readdir(folder)).filter((name) => name.endsWith(".tmp"));

describe("openAtomicFile", () => {
  it("creates the file on close, and nothing is visible before", async () => {
    const path = join(folder, "out.bin");
    const sink = await openAtomicFile(path);
    await sink.write(bytes(1, 2, 3));
    expect(await readdir(folder)).toEqual([
      expect.stringMatching(/^\.out\.bin\.[0-9a-f]{12}\.tmp$/),
    ]);
    await sink.close();
    expect([...(await readFile(path))]).toEqual([1, 2, 3]);
    expect(await readdir(folder)).toEqual(["out.bin"]);
  });

  it("replaces an existing file whole, keeping its permissions", async () => {
    const path = join(folder, "state.json");
    await writeFile(path, "old content that is longer than the new one");
    await chmod(path, 0o640);
    const sink = await openAtomicFile(path);
    await sink.write(new TextEncoder().encode("new"));
    // Until close, the old file is untouched.
    expect(await readFile(path, "utf8")).toBe("old content that is longer than the new one");
    await sink.close();
    expect(await readFile(path, "utf8")).toBe("new");
    expect((await stat(path)).mode & 0o777).toBe(0o640);
    expect(await tempFiles()).toEqual([]);
  });

  it("abort leaves the previous file and no temporary file", async () => {
    const path = join(folder, "model.safetensors");
    await writeFile(path, "previous");
    const sink = await openAtomicFile(path, { bufferBytes: 4 });
    await sink.write(new TextEncoder().encode("partial data that was flushed"));
    await sink.abort();
    expect(await readFile(path, "utf8")).toBe("previous");
    expect(await readdir(folder)).toEqual(["model.safetensors"]);
    // Twice is fine.
    await sink.abort();
  });

  it("abort of a new file leaves nothing at all", async () => {
    const sink = await openAtomicFile(join(folder, "new.bin"));
    await sink.write(bytes(1));
    await sink.abort();
    expect(await readdir(folder)).toEqual([]);
  });

  it("keeps every byte in order across buffer boundaries, whatever the write sizes", async () => {
    const path = join(folder, "out.bin");
    const sink = await openAtomicFile(path, { bufferBytes: 7 });
    const parts: Uint8Array[] = [];
    let seed = 1;
    for (let i = 0; i < 60; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const size = seed % 23; // 0..22: smaller than, equal to and larger than the buffer
      const part = new Uint8Array(size).map((_, k) => (i * 31 + k) & 0xff);
      parts.push(part.slice());
      await sink.write(part);
      // The caller may reuse its array as soon as write resolves.
      part.fill(0xee);
    }
    await sink.close();
    expect(new Uint8Array(await readFile(path))).toEqual(concat(parts));
  });

  it("writes in call order even when the caller does not await", async () => {
    const path = join(folder, "out.bin");
    const sink = await openAtomicFile(path, { bufferBytes: 2 });
    const pending = [sink.write(bytes(1, 2, 3)), sink.write(bytes(4)), sink.write(bytes(5, 6))];
    await Promise.all([...pending, sink.close()]);
    expect([...(await readFile(path))]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("refuses use after close, and abort after close keeps the file", async () => {
    const path = join(folder, "out.bin");
    const sink = await openAtomicFile(path);
    await sink.write(bytes(9));
    await sink.close();
    await expect(sink.write(bytes(1))).rejects.toMatchObject({ code: "SINK_CLOSED" });
    await expect(sink.close()).rejects.toBeInstanceOf(WriteError);
    await sink.abort();
    expect([...(await readFile(path))]).toEqual([9]);
  });

  it("fails to open where no file can be made, naming the file", async () => {
    const missing = join(folder, "no", "such", "folder", "x.bin");
    await expect(openAtomicFile(missing)).rejects.toMatchObject({
      code: "WRITE_FAILED",
      file: missing,
    });
    await mkdir(join(folder, "a-folder"));
    await expect(openAtomicFile(join(folder, "a-folder"))).rejects.toMatchObject({
      code: "WRITE_FAILED",
    });
    await expect(openAtomicFile(join(folder, "x"), { bufferBytes: 0 })).rejects.toMatchObject({
      code: "INVALID_OPTION",
    });
  });

  it("cleans up and reports when the final rename fails", async () => {
    const path = join(folder, "target");
    const sink = await openAtomicFile(path);
    await sink.write(bytes(1, 2));
    // Something else puts a non-empty folder where the file should go.
    await mkdir(path);
    await writeFile(join(path, "inside"), "x");
    const error = await sink.close().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WriteError);
    expect(error).toMatchObject({ code: "WRITE_FAILED", file: path });
    expect((error as WriteError).hint).toContain("left as it was");
    expect(await tempFiles()).toEqual([]);
    expect(await readdir(path)).toEqual(["inside"]);
  });
});

describe("tempFileName", () => {
  it("is a hidden .tmp file named after the destination", () => {
    expect(tempFileName("model.safetensors")).toMatch(/^\.model\.safetensors\.[0-9a-f]{12}\.tmp$/);
    expect(tempFileName("a")).not.toBe(tempFileName("a"));
  });

  it("shortens long names without splitting a character", () => {
    const name = `${"é".repeat(100)}.safetensors`;
    const temp = tempFileName(name);
    const stem = temp.slice(1, -".123456789abc.tmp".length);
    expect(new TextEncoder().encode(stem).byteLength).toBeLessThanOrEqual(128);
    expect(stem).toBe("é".repeat(64));
    expect(new TextEncoder().encode(temp).byteLength).toBeLessThan(255);
  });
});

describe("writeFileAtomic", () => {
  it("writes text and bytes, replacing what was there", async () => {
    const path = join(folder, "state.json");
    await writeFileAtomic(path, '{"step": 1}');
    expect(await readFile(path, "utf8")).toBe('{"step": 1}');
    await writeFileAtomic(path, bytes(0x7b, 0x7d));
    expect(await readFile(path, "utf8")).toBe("{}");
    await writeFileAtomic(path, "");
    expect(await readFile(path, "utf8")).toBe("");
    expect(await readdir(folder)).toEqual(["state.json"]);
  });
});

describe("writeSafetensors into an atomic file", () => {
  it("writes a file the reader opens", async () => {
    const path = join(folder, "model.safetensors");
    await writeSafetensors(await openAtomicFile(path), [
      ["w", memoryTensor("float32", [2, 2], new Float32Array([1, 2, 3, 4]))],
    ]);
    const source = await FileSource.open(path);
    try {
      const opened = await openSafetensors(source);
      const w = (opened.root as Map<string, Tensor>).get("w")!;
      expect([...(await w.read())]).toEqual([1, 2, 3, 4]);
    } finally {
      await source.close();
    }
  });

  it("leaves the previous file when a tensor fails mid-write", async () => {
    const path = join(folder, "model.safetensors");
    await writeFile(path, "previous");
    const failing = {
      dtype: "uint8" as const,
      shape: [1],
      read: () => Promise.reject(new Error("gone")),
    };
    const big = memoryTensor("uint8", [1 << 20], new Uint8Array(1 << 20));
    await expect(
      writeSafetensors(await openAtomicFile(path, { bufferBytes: 4096 }), [
        ["big", big],
        ["z", failing],
      ]),
    ).rejects.toThrow("gone");
    expect(await readFile(path, "utf8")).toBe("previous");
    expect(await tempFiles()).toEqual([]);
  });
});
