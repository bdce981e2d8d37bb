import type { PyValue } from "./values.js";

/**
 * The pickle memo. Its keys are whatever 32-bit numbers the file chooses, so they are never used
 * to size anything: entries numbered 0, 1, 2... in order (how every pickler numbers them) go
 * into an array that grows one entry at a time; any other key goes into a Map. A real torch
 * pickle stores hundreds of thousands of entries, and the array keeps that fast.
 */
export class Memo {
  private readonly dense: PyValue[] = [];
  private readonly sparse = new Map<number, PyValue>();

  get size(): number {
    return this.dense.length + this.sparse.size;
  }

  set(index: number, value: PyValue): void {
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
    return index < this.dense.length ? this.dense[index] : this.sparse.get(index);
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
