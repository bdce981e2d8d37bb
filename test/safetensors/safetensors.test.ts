import { describe, expect, it } from "vitest";
import { SafetensorsError } from "../../src/errors.js";
import { openSafetensors } from "../../src/formats/safetensors/safetensors.js";
import { MemorySource, SliceSource } from "../../src/io/byte-source.js";
import { FileSource } from "../../src/io/file-source.js";
import { Tensor } from "../../src/tensors/tensor.js";
import { entry, header, safetensorsFile } from "./build.js";
import { expected, expectTensorMatches, FIXTURES, fixtureSource, values } from "./fixtures.js";

function tensorsOf(root: unknown): Map<string, Tensor> {
  expect(root).toBeInstanceOf(Map);
  return root as Map<string, Tensor>;
}

describe("openSafetensors", () => {
  for (const name of ["basic.safetensors", "edge.safetensors"]) {
    it(`reads every tensor of ${name} as numpy wrote it`, async () => {
      const want = expected[name]!;
      const opened = await openSafetensors(fixtureSource(name));
      expect(opened.format).toBe("safetensors");
      expect(opened.metadata ?? null).toEqual(want.metadata);
      expect(opened.ownedSources).toEqual([]);
      expect(opened.opaqueClasses.size).toBe(0);
      const root = tensorsOf(opened.root);
      // Header order, which for edge.safetensors is not the order of the data.
      expect([...root.keys()]).toEqual(Object.keys(want.tensors));
      expect(opened.details.tensors).toBe(root.size);
      for (const [key, tensor] of root) {
        expect(tensor).toBeInstanceOf(Tensor);
        expect(tensor.key).toBe(key);
        await expectTensorMatches(tensor, want.tensors[key]!);
      }
    });
  }

  it("reads only the length prefix and the header when opening", async () => {
    const source = fixtureSource("basic.safetensors");
    const bytes = await source.read(0, 8);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    source.bytesRead = 0;
    const opened = await openSafetensors(source);
    expect(source.bytesRead).toBe(8 + n);
    expect(opened.details.headerBytes).toBe(n);
    // Reading one tensor reads exactly its bytes.
    const f32 = tensorsOf(opened.root).get("f32")!;
    await f32.read();
    expect(source.bytesRead).toBe(8 + n + 12 * 4);
  });

  it("gives each tensor a contiguous little-endian view over its own slice", async () => {
    const source = fixtureSource("edge.safetensors");
    const opened = await openSafetensors(source);
    const root = tensorsOf(opened.root);
    const last = root.get("last")!;
    expect(last.storage.source).toBeInstanceOf(SliceSource);
    expect(last.storage.source.size).toBe(8);
    expect(last.storage.source.name).toBe("edge.safetensors:last");
    expect(await (last.storage.source as SliceSource).origin()).toBe(
      8 + (opened.details.headerBytes as number) + 4,
    );
    expect(last.storage.dtype).toBe("float16");
    expect(last.storage.bigEndian).toBe(false);
    expect(last.isContiguous).toBe(true);
    expect(last.storageOffset).toBe(0);
    const scalar = root.get("scalar")!;
    expect(scalar.shape).toEqual([]);
    expect(scalar.numel).toBe(1);
    expect(root.get("empty")!.numel).toBe(0);
    expect((await root.get("empty")!.read()).length).toBe(0);
  });

  it("reads from a file on disk the same way", async () => {
    const source = await FileSource.open(`${FIXTURES}/basic.safetensors`);
    try {
      const root = tensorsOf((await openSafetensors(source)).root);
      const want = expected["basic.safetensors"]!.tensors;
      for (const [key, tensor] of root) await expectTensorMatches(tensor, want[key]!);
    } finally {
      await source.close();
    }
  });

  it("reads hand-built data bytes exactly", async () => {
    // I32 [2, 2] = 1, -2, 3, -4 little-endian, then a U8 [3].
    const data = new Uint8Array([
      1, 0, 0, 0, 254, 255, 255, 255, 3, 0, 0, 0, 252, 255, 255, 255, 7, 8, 9,
    ]);
    const text = header([
      ["i", entry("I32", [2, 2], 0, 16)],
      ["u", entry("U8", [3], 16, 19)],
    ]);
    const root = tensorsOf(
      (await openSafetensors(new MemorySource(safetensorsFile(text, { data })))).root,
    );
    expect(values(await root.get("i")!.read())).toEqual([1, -2, 3, -4]);
    expect(values(await root.get("u")!.read())).toEqual([7, 8, 9]);
    expect(values(await root.get("i")!.read({ dtype: "float64" }))).toEqual([1, -2, 3, -4]);
  });

  it("refuses broken files with the rule's code, naming the source", async () => {
    const tiny = new MemorySource(new Uint8Array(3), "tiny.safetensors");
    await expect(openSafetensors(tiny)).rejects.toMatchObject({
      code: "HeaderTooSmall",
      file: "tiny.safetensors",
    });
    expect(tiny.bytesRead).toBe(0);

    // A length past the end is refused before the header is read.
    const long = new MemorySource(
      safetensorsFile("{}", { declaredLength: 1000n }),
      "long.safetensors",
    );
    await expect(openSafetensors(long)).rejects.toBeInstanceOf(SafetensorsError);
    expect(long.bytesRead).toBe(8);

    const bad = new MemorySource(
      safetensorsFile(header([["w", entry("F32", [2, 2], 0, 8)]]), { data: 8 }),
      "bad.safetensors",
    );
    await expect(openSafetensors(bad)).rejects.toMatchObject({
      code: "TensorInvalidInfo",
      key: "w",
      file: "bad.safetensors",
    });
  });
});
