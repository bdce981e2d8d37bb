import type { Memo } from "./memo.js";
import type { ShortcutRun } from "./types.js";
import type { PyValue } from "./values.js";

/**
 * The machine's side of one CallShortcut attempt: the memo the shortcut may read, and the PUTs
 * it records, which the machine applies only when the shortcut takes the call. One per machine,
 * reset for each attempt.
 */
export class MachineShortcutRun implements ShortcutRun {
  bytes: Uint8Array;
  start = 0;
  limit = 0;
  end = 0;
  operations = 0;
  stackDepth = 0;
  markDepth = 0;
  containerItems = 0;
  /**
   * Indices of the PUTs recorded so far in this attempt: the first `putCount` items. Made at
   * its full length (a tensor call has about eight PUTs), so that writing never grows it: a
   * growing write in optimized code is a deoptimization the first time a call has more.
   */
  readonly puts: number[] = new Array<number>(32).fill(0);
  putCount = 0;

  constructor(
    bytes: Uint8Array,
    private readonly memo: Memo,
    readonly maxStringBytes: number,
  ) {
    this.bytes = bytes;
  }

  begin(start: number, limit: number): void {
    this.start = start;
    this.limit = limit;
    this.end = start;
    this.operations = 0;
    this.stackDepth = 0;
    this.markDepth = 0;
    this.containerItems = 0;
    this.putCount = 0;
  }

  memoValue(index: number): PyValue | undefined {
    return this.memo.get(index);
  }

  put(index: number): boolean {
    if (this.memo.mayRead(index)) return false;
    this.puts[this.putCount++] = index;
    return true;
  }
}
