import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { LimitExceededError } from "../../src/errors.js";
import { Memo } from "../../src/formats/pickle/memo.js";
import { Op } from "../../src/formats/pickle/opcodes.js";
import { unpickle } from "../../src/formats/pickle/unpickler.js";
import { bytes, proto, u32 } from "./assemble.js";

/** Indices 1, 4 and 7 are read; the others are only stored. */
const reads = { has: (index: number) => index === 1 || index === 4 || index === 7 };

/**
 * Python's pickle.loads of this pickle gives ['a', 'b', 'c', 'd', 'c', 'b', 'a', 'd']: 'b' is
 * stored at 2 and again at 7, so the memo's size is 4 when 'c' is memoized (it goes to 4, not 3)
 * and 5 when 'd' is (it goes to 5).
 */
const OUT_OF_ORDER = bytes(
  proto(4),
  Op.EMPTY_LIST,
  Op.MEMOIZE,
  Op.MARK,
  [Op.SHORT_BINUNICODE, 1, "a", Op.MEMOIZE],
  [Op.SHORT_BINUNICODE, 1, "b", Op.MEMOIZE],
  [Op.LONG_BINPUT, u32(7)],
  [Op.SHORT_BINUNICODE, 1, "c", Op.MEMOIZE],
  [Op.SHORT_BINUNICODE, 1, "d", Op.MEMOIZE],
  [Op.BINGET, 4, Op.BINGET, 7, Op.BINGET, 1, Op.BINGET, 5],
  Op.APPENDS,
  Op.STOP,
);

describe("memo that keeps only the entries the pickle reads", () => {
  it("counts every stored index, in any order, and keeps the read ones", () => {
    const memo = new Memo(reads);
    memo.set(0, "zero");
    memo.set(1, "one");
    memo.set(7, "seven");
    memo.set(2, "two");
    // Indices 0, 1, 2, 7.
    expect(memo.size).toBe(4);
    memo.set(4, "four");
    memo.set(3, "three");
    // 0-4 now run on without a gap, and 7.
    expect(memo.size).toBe(6);
    memo.set(1, "ONE");
    memo.set(5, "five");
    memo.set(6, "six");
    expect(memo.size).toBe(8);
    expect([memo.get(1), memo.get(4), memo.get(7)]).toEqual(["ONE", "four", "seven"]);
    // Never read, so never kept.
    expect(memo.get(0)).toBeUndefined();
  });

  it("is empty after clear", () => {
    const memo = new Memo(reads);
    memo.set(1, "one");
    memo.set(9, "nine");
    memo.clear();
    expect(memo.size).toBe(0);
    expect(memo.get(1)).toBeUndefined();
    const full = new Memo();
    full.set(0, "zero");
    full.clear();
    expect([full.size, full.get(0)]).toEqual([0, undefined]);
  });

  it("unpickles MEMOIZE after an out-of-order PUT as Python does", () => {
    expect(unpickle(OUT_OF_ORDER).value).toEqual(["a", "b", "c", "d", "c", "b", "a", "d"]);
  });

  it("counts entries it does not keep against maxMemo", () => {
    // Six distinct indices (0, 1, 2, 7, 4, 5): a limit of 5 is passed at the sixth.
    const run = () => unpickle(OUT_OF_ORDER, { limits: { maxMemo: 5 } });
    expect(run).toThrow(LimitExceededError);
    expect(() => unpickle(OUT_OF_ORDER, { limits: { maxMemo: 6 } })).not.toThrow();
  });
});

describe("the machine kept after unpickling", () => {
  it("holds nothing of the pickle it read", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    // A list holding a dict: both only reachable through the unpickler once the result is dropped.
    const pickle = bytes(proto(2), Op.EMPTY_LIST, Op.EMPTY_DICT, Op.APPEND, Op.STOP);
    let result: unknown = unpickle(pickle).value;
    expect(result).toEqual([new Map()]);
    const ref = new WeakRef(result as object);
    result = undefined;
    // WeakRef targets live until the current job ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(ref.deref()).toBeUndefined();
  });
});
