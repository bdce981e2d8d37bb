import type { MemoReads } from "./memo-reads.js";
import type { PyValue } from "./values.js";

/** Read entries numbered below this are kept in an array: a BINGET's one-byte index, and more. */
const KEPT_ARRAY_LENGTH = 1024;

/**
 * The pickle memo. Its keys are whatever 32-bit numbers the file chooses, so they are never used
 * to size anything: entries numbered 0, 1, 2... in order (how every pickler numbers them) go
 * into an array that grows one entry at a time; any other key goes into a Map. A real torch
 * pickle stores hundreds of thousands of entries, and the array keeps that fast.
 *
 * Given the indices the pickle will ever read (findMemoReads), only those values are kept; the
 * other entries are only counted, as their number is the memo's size (MEMOIZE's next index and
 * the maxMemo limit). A 20,000-tensor checkpoint stores 160,000 entries and reads about 260:
 * an array of 160,000 Nones was megabytes that every garbage collection during the open copied.
 */
export class Memo {
  private readonly dense: PyValue[] = [];
  private readonly sparse = new Map<number, PyValue>();
  /** With `reads`: indices 0..counted-1 are all set (their values are not kept). */
  private counted = 0;
  /**
   * With `reads`: the values of the entries that are read, those numbered below KEPT_ARRAY_LENGTH
   * in an array (a torch pickle reads its few shared values, the rebuild function, 'storage',
   * 'cpu', back once per tensor, and a Map lookup each time was a measurable part of opening),
   * the rest in a Map. An absent entry reads `undefined` from both (no PyValue is undefined).
   */
  private readonly keptLow: (PyValue | undefined)[] = new Array<PyValue | undefined>(
    KEPT_ARRAY_LENGTH,
  ).fill(undefined);
  private readonly kept = new Map<number, PyValue>();

  constructor(private reads?: MemoReads) {}

  /** Forgets every entry and which are read (the memo of a finished unpickle). */
  clear(): void {
    this.dense.length = 0;
    this.sparse.clear();
    this.keptLow.fill(undefined);
    this.kept.clear();
    this.counted = 0;
    this.reads = undefined;
  }

  /** Whether the pickle may read entry `index` back: always, when which it reads is not known. */
  mayRead(index: number): boolean {
    return this.reads === undefined || this.reads.has(index);
  }

  get size(): number {
    return this.dense.length + this.counted + this.sparse.size;
  }

  set(index: number, value: PyValue): void {
    if (this.reads !== undefined) {
      this.count(index);
      const read = this.reads.has(index);
      // Stored whether read or not (as undefined), so that this store runs from the first entry
      // of every pickle: one that ran only for the few read entries, before V8 kept type
      // feedback for it, threw the optimized code away at the next checkpoint's first.
      if (index < KEPT_ARRAY_LENGTH) this.keptLow[index] = read ? value : undefined;
      else if (read) this.kept.set(index, value);
      return;
    }
    const dense = this.dense;
    if (index < dense.length) {
      dense[index] = value;
    } else if (index === dense.length) {
      dense.push(value);
      if (this.sparse.size > 0) this.absorbSparse(index);
    } else {
      this.sparse.set(index, value);
    }
  }

  get(index: number): PyValue | undefined {
    if (this.reads !== undefined) {
      return index < KEPT_ARRAY_LENGTH ? this.keptLow[index] : this.kept.get(index);
    }
    return index < this.dense.length ? this.dense[index] : this.sparse.get(index);
  }

  /** Records that `index` is set, without its value (`sparse` then holds presence only). */
  private count(index: number): void {
    if (index < this.counted) return;
    if (index !== this.counted) {
      this.sparse.set(index, null);
      return;
    }
    this.counted++;
    if (this.sparse.size === 0) return;
    this.sparse.delete(index);
    while (this.sparse.has(this.counted)) this.sparse.delete(this.counted++);
  }

  /** Moves the entries that now continue the array out of the Map, so each key lives in one place. */
  private absorbSparse(pushed: number): void {
    this.sparse.delete(pushed);
    const dense = this.dense;
    for (
      let next = this.sparse.get(dense.length);
      next !== undefined;
      next = this.sparse.get(dense.length)
    ) {
      this.sparse.delete(dense.length);
      dense.push(next);
    }
  }
}
