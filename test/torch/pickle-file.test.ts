import { describe, expect, it } from "vitest";
import {
  FormatError,
  LimitExceededError,
  PickleError,
  UnsafeCheckpointError,
} from "../../src/errors.js";
import { MAX_PICKLE_FILE_BYTES, openPickle } from "../../src/formats/torch/pickle-file.js";
import type { ByteSource } from "../../src/io/byte-source.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { rejectionOf } from "../zip/helpers.js";
import {
  type ExpectedLeaf,
  expectLeaves,
  fixture,
  readJson,
  toPlain,
  withFile,
} from "./helpers.js";

const expected = readJson<{
  files: Record<string, { tensors: ExpectedLeaf[]; others: Record<string, unknown> }>;
}>(fixture("expected.json"));

describe("openPickle", () => {
  it("reads a plain pickle as Python does", async () => {
    await withFile(fixture("plain.pkl"), openPickle, async (opened) => {
      expect(opened.format).toBe("pickle");
      expect(toPlain(opened.root)).toEqual(expected.files["plain.pkl"]!.others);
      expect(opened.details).toEqual({ protocol: 2 });
      expect(opened.ownedSources).toEqual([]);
    });
  });

  it("reads tensors torch rebuilds from numpy arrays, with the torch allowlist", async () => {
    await withFile(fixture("numpy-tensor.pkl"), openPickle, async (opened) => {
      await expectLeaves(opened.root, expected.files["numpy-tensor.pkl"]!.tensors);
    });
  });

  it("refuses persistent ids: a bare pickle has nowhere to keep storages", async () => {
    const error = await rejectionOf(
      withFile(fixture("persistent.pkl"), openPickle, async () => undefined),
    );
    expect(error).toBeInstanceOf(FormatError);
    expect(error.code).toBe("PERSISTENT_ID");
    expect(error.message).toContain("not a torch.save file");
  });

  it("reads every pickle in the file, refusing junk or a hostile one behind the first", async () => {
    // Python: pickle.dumps(7, protocol=2) == b"\x80\x02K\x07.", then pickle.dumps(8, protocol=2).
    const two = await openPickle(
      new MemorySource(Uint8Array.from([0x80, 2, 0x4b, 7, 0x2e, 0x80, 2, 0x4b, 8, 0x2e])),
    );
    expect(two.root).toBe(7);
    expect(two.details).toEqual({ protocol: 2, morePickles: 1 });
    // Bytes 1, 2, 3 after the STOP are not a pickle (0x01 is no opcode).
    expect(
      await rejectionOf(
        openPickle(new MemorySource(Uint8Array.from([0x80, 2, 0x4b, 7, 0x2e, 1, 2, 3]))),
      ),
    ).toBeInstanceOf(PickleError);
    // A benign pickle followed by one that calls os.system (GLOBAL 'os system', REDUCE).
    const smuggled = Uint8Array.from(
      "\x80\x02K\x07.\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.",
      (c) => c.charCodeAt(0),
    );
    expect(await rejectionOf(openPickle(new MemorySource(smuggled)))).toBeInstanceOf(
      UnsafeCheckpointError,
    );
  });

  it("passes strict, allowGlobals and limits through", async () => {
    // Protocol 2: GLOBAL mylib.make, EMPTY_TUPLE, REDUCE, STOP.
    const calling = Uint8Array.from("\x80\x02cmylib\nmake\n)R.", (c) => c.charCodeAt(0));
    expect(await rejectionOf(openPickle(new MemorySource(calling)))).toBeInstanceOf(
      UnsafeCheckpointError,
    );
    const opened = await openPickle(new MemorySource(calling), { allowGlobals: ["mylib.make"] });
    expect([...opened.opaqueClasses]).toEqual(["mylib.make"]);
    const limited = await rejectionOf(
      openPickle(new MemorySource(calling), {
        allowGlobals: ["mylib.make"],
        limits: { maxOperations: 2 },
      }),
    );
    expect(limited).toBeInstanceOf(LimitExceededError);
    // NEWOBJ of an unknown class: inert unless strict.
    const building = Uint8Array.from("\x80\x02cmylib\nThing\n)\x81.", (c) => c.charCodeAt(0));
    expect([...(await openPickle(new MemorySource(building))).opaqueClasses]).toEqual([
      "mylib.Thing",
    ]);
    expect(
      await rejectionOf(openPickle(new MemorySource(building), { strict: true })),
    ).toBeInstanceOf(UnsafeCheckpointError);
  });

  it("refuses files over 1 GiB without reading them", async () => {
    let reads = 0;
    const huge: ByteSource = {
      name: "huge.pkl",
      size: MAX_PICKLE_FILE_BYTES + 1,
      bytesRead: 0,
      read: async () => {
        reads++;
        return new Uint8Array(0);
      },
      readInto: async () => {
        reads++;
      },
      close: async () => {},
    };
    const error = await rejectionOf(openPickle(huge));
    expect(error).toBeInstanceOf(LimitExceededError);
    expect(error.code).toBe("PICKLE_TOO_LARGE");
    expect(reads).toBe(0);
    expect(MAX_PICKLE_FILE_BYTES).toBe(2 ** 30);
  });
});
