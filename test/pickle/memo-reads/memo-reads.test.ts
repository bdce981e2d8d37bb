import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findMemoReads } from "../../../src/formats/pickle/memo-reads.js";
import { Op } from "../../../src/formats/pickle/opcodes.js";
import { unpickle } from "../../../src/formats/pickle/unpickler.js";
import { binget, binint1, binput, bytes, longBinget, longBinput, proto, u32 } from "../assemble.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const fixtures = join(here, "..", "..", "fixtures", "pickle");
/** From CPython's pickletools over the same files (expected.py). */
const expected = JSON.parse(readFileSync(join(here, "expected.json"), "utf8")) as Record<
  string,
  number[] | null
>;

describe("findMemoReads", () => {
  it.each(Object.entries(expected))("finds the memo indices %s reads", (name, reads) => {
    const found = findMemoReads(readFileSync(join(fixtures, name)), 0);
    if (reads === null) {
      // A text-mode GET: the walk gives up, and the unpickler keeps every entry.
      expect(found).toBeUndefined();
      return;
    }
    expect(found).toBeDefined();
    for (const index of reads) expect(found!.has(index), `index ${index}`).toBe(true);
    // Nothing else: the first 300 indices, and each read index's neighbours.
    const probes = new Set([
      ...Array.from({ length: 300 }, (_, i) => i),
      ...reads.flatMap((i) => [i - 1, i + 1]),
    ]);
    const extra = [...probes].filter((i) => i >= 0 && !reads.includes(i) && found!.has(i));
    expect(extra).toEqual([]);
  });

  it("stops at the first STOP, as the unpickler does", () => {
    const data = bytes(proto(2), Op.NONE, Op.STOP, binget(7));
    const found = findMemoReads(data, 0);
    expect(found?.has(7)).toBe(false);
    // From an offset: what follows it (here a BINGET and no STOP: unsure).
    expect(findMemoReads(data, 4)).toBeUndefined();
    expect(findMemoReads(bytes(Op.NONE, Op.STOP, binget(7), Op.STOP), 2)?.has(7)).toBe(true);
  });

  it("keeps indices beyond the pickle's length (LONG_BINGET)", () => {
    const found = findMemoReads(bytes(proto(2), Op.NONE, longBinget(4_000_000_000), Op.STOP), 0);
    expect(found?.has(4_000_000_000)).toBe(true);
    expect(found?.has(3_999_999_999)).toBe(false);
  });

  it.each([
    ["data that ends before STOP", bytes(proto(2), Op.NONE)],
    ["a length past the end", bytes(proto(2), Op.BINUNICODE, u32(100), "ab", Op.STOP)],
    ["a negative BINSTRING length", bytes(proto(2), Op.BINSTRING, u32(0xffffffff), Op.STOP)],
    ["a byte that is no opcode", bytes(proto(2), 0xff, Op.STOP)],
    ["a text GET", bytes(Op.NONE, Op.PUT, "0\n", Op.GET, "0\n", Op.STOP)],
    ["a GLOBAL without its second line", bytes(Op.GLOBAL, "builtins\nlist")],
    // The opcodes of a tensor, read without the table: an argument cut short, STOP's byte in it.
    ["a LONG_BINPUT cut short", bytes(proto(2), Op.NONE, Op.LONG_BINPUT, Op.STOP)],
    ["a BINPUT without its index", bytes(proto(2), Op.NONE, Op.BINPUT)],
    ["a BININT1 without its byte", bytes(proto(2), Op.BININT1)],
    ["a BINGET without its index", bytes(proto(2), Op.BINGET)],
    ["a BINUNICODE length cut short", bytes(proto(2), Op.BINUNICODE, Op.STOP, Op.STOP)],
    ["a BINUNICODE text holding STOP", bytes(proto(2), Op.BINUNICODE, u32(3), Op.STOP, "a")],
  ])("gives up on %s", (_, data) => {
    expect(findMemoReads(data, 0)).toBeUndefined();
  });
});

describe("unpickling with unread memo entries dropped", () => {
  it("still shares what is read back: one list, twice", () => {
    const data = bytes(proto(2), Op.EMPTY_LIST, binput(0), binint1(5), Op.APPEND, Op.POP);
    const shared = bytes(data, binget(0), binget(0), Op.TUPLE2, Op.STOP);
    const value = unpickle(shared).value as unknown as unknown[][];
    expect(value[0]).toEqual([5]);
    expect(value[0]).toBe(value[1]);
  });

  it("reads back what MEMOIZE stored, at the memo's size", () => {
    // [] MEMOIZE (index 0), 7 MEMOIZE (index 1, never read), POP, GET 0 read back.
    const data = bytes(
      proto(4),
      Op.EMPTY_LIST,
      Op.MEMOIZE,
      binint1(7),
      Op.MEMOIZE,
      Op.APPEND,
      binget(0),
      Op.TUPLE2,
      Op.STOP,
    );
    const [list, again] = unpickle(data).value as unknown as unknown[][];
    expect(list).toEqual([7]);
    expect(again).toBe(list);
  });

  it("reads back the latest value put at an index", () => {
    const data = bytes(
      proto(2),
      binint1(1),
      binput(3),
      binint1(2),
      binput(3),
      binget(3),
      Op.TUPLE3,
      Op.STOP,
    );
    expect(unpickle(data).value).toEqual([1, 2, 2]);
  });

  it("reads back entries numbered past the kept array and at its edges", () => {
    // Read entries below 1024 are kept in an array, the rest in a Map: both, and unread
    // neighbours written in between, which must not be read back in their place.
    const indices = [0, 1023, 1024, 5000, 4_000_000_000];
    const puts = indices.flatMap((index, i) => [
      binint1(i + 1),
      longBinput(index),
      binint1(100 + i),
      longBinput(index + 1),
      Op.POP,
      Op.POP,
    ]);
    const gets = indices.map((index) => longBinget(index));
    const data = bytes(proto(2), ...puts, Op.MARK, ...gets, Op.TUPLE, Op.STOP);
    expect(unpickle(data).value).toEqual(indices.map((_, i) => i + 1));
  });

  it("still counts every entry against maxMemo", () => {
    const data = bytes(proto(2), Op.NONE, binput(0), binput(1), binput(2), Op.STOP);
    expect(() => unpickle(data, { limits: { maxMemo: 2 } })).toThrow(
      expect.objectContaining({ code: "maxMemo" }),
    );
  });
});
