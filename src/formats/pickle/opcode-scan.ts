import { asciiText, isAscii } from "../latin1.js";
import { Op } from "./opcodes.js";
import type { ShortcutRun } from "./types.js";
import type { PyValue } from "./values.js";

/**
 * Reads the opcodes a CallShortcut has been offered, one expected opcode at a time, as the
 * machine would execute them: every argument checked to lie within the run's limit, the values
 * the machine would have on its stack and the MARKs it would have open counted as they come,
 * memo reads answered from the machine's memo and PUTs recorded with it. Each read returns a
 * failure value (false, -1, undefined) instead of throwing: a shortcut that meets anything it
 * did not expect declines, and the machine runs those opcodes itself.
 */
export class OpcodeScan {
  private run!: ShortcutRun;
  private bytes: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private limit = 0;
  private operations = 0;
  /** Values on the machine's stack since the run started (the global's BINGET is the first). */
  private depth = 0;
  private deepest = 0;
  /** Depth at each open MARK: the first `openMarks` items (not `length`, whose setter is a call into the runtime). */
  private readonly marks: number[] = [];
  private openMarks = 0;
  private mostMarks = 0;
  private widest = 0;

  begin(run: ShortcutRun): void {
    this.run = run;
    this.bytes = run.bytes;
    this.pos = run.start;
    this.limit = run.limit;
    this.operations = 0;
    this.depth = 1;
    this.deepest = 1;
    this.openMarks = 0;
    this.mostMarks = 0;
    this.widest = 0;
  }

  /** Reports what was read to the run: call once the shortcut takes the call. */
  finish(): void {
    const run = this.run;
    run.end = this.pos;
    run.operations = this.operations;
    run.stackDepth = this.deepest;
    run.markDepth = this.mostMarks;
    run.containerItems = this.widest;
  }

  /** Consumes opcode `op` if it is next. */
  private next(op: number): boolean {
    if (this.pos >= this.limit || this.bytes[this.pos] !== op) return false;
    this.pos++;
    this.operations++;
    return true;
  }

  /** The next opcode, not consumed; -1 at the limit. */
  private peek(): number {
    return this.pos < this.limit ? this.bytes[this.pos]! : -1;
  }

  /** Whether an opcode with an argument of `n` bytes fits before the limit. */
  private fits(n: number): boolean {
    return 1 + n <= this.limit - this.pos;
  }

  /** Consumes an opcode and its `n`-byte argument (checked with fits). */
  private consume(n: number): void {
    this.pos += 1 + n;
    this.operations++;
  }

  private push(): void {
    if (++this.depth > this.deepest) this.deepest = this.depth;
  }

  /** Values below the innermost MARK are out of the machine's reach. */
  private base(): number {
    return this.openMarks > 0 ? this.marks[this.openMarks - 1]! : 0;
  }

  // Each read below consumes its opcode only when it returns success: a read that fails leaves
  // the position where it was, so a caller trying alternatives (a count, else the end of a
  // tuple) never skips an opcode it did not understand.

  /** An opcode that pops `pops` values and pushes one (TUPLE2, REDUCE, BINPERSID...). */
  popsPushes(op: number, pops: number): boolean {
    if (this.depth - pops < this.base() || !this.next(op)) return false;
    this.depth -= pops - 1;
    return true;
  }

  /** A value-less opcode that pushes one (EMPTY_TUPLE, NEWTRUE, NEWFALSE...). */
  pushes(op: number): boolean {
    if (!this.next(op)) return false;
    this.push();
    return true;
  }

  /** MARK. */
  mark(): boolean {
    if (!this.next(Op.MARK)) return false;
    this.marks[this.openMarks++] = this.depth;
    if (this.openMarks > this.mostMarks) this.mostMarks = this.openMarks;
    return true;
  }

  /** TUPLE: the values above the innermost MARK become one; how many there were, or -1. */
  tuple(): number {
    if (this.openMarks === 0 || !this.next(Op.TUPLE)) return -1;
    const base = this.marks[--this.openMarks]!;
    const items = this.depth - base;
    if (items > this.widest) this.widest = items;
    this.depth = base;
    this.push();
    return items;
  }

  /** NEWTRUE or NEWFALSE: 1 or 0, or -1 for anything else. */
  boolean(): number {
    if (this.pushes(Op.NEWTRUE)) return 1;
    if (this.pushes(Op.NEWFALSE)) return 0;
    return -1;
  }

  /** BININT1, BININT2 or a non-negative BININT: its value, or -1. */
  count(): number {
    const { bytes } = this;
    const at = this.pos + 1;
    let value = -1;
    let length = 0;
    switch (this.peek()) {
      case Op.BININT1:
        length = 1;
        if (this.fits(1)) value = bytes[at]!;
        break;
      case Op.BININT2:
        length = 2;
        if (this.fits(2)) value = bytes[at]! | (bytes[at + 1]! << 8);
        break;
      case Op.BININT:
        length = 4;
        // Negative (the top bit set) is not a count.
        if (this.fits(4) && bytes[at + 3]! < 0x80) value = uint32(bytes, at);
        break;
    }
    if (value >= 0) {
      this.consume(length);
      this.push();
    }
    return value;
  }

  /** BINUNICODE or SHORT_BINUNICODE holding ASCII text: the text, or undefined. */
  asciiString(): string | undefined {
    const { bytes } = this;
    const op = this.peek();
    const header = op === Op.BINUNICODE ? 4 : op === Op.SHORT_BINUNICODE ? 1 : 0;
    if (header === 0 || !this.fits(header)) return undefined;
    const at = this.pos + 1;
    const length = header === 4 ? uint32(bytes, at) : bytes[at]!;
    const start = at + header;
    if (length > this.run.maxStringBytes || !this.fits(header + length)) return undefined;
    if (!isAscii(bytes, start, start + length)) return undefined;
    this.consume(header + length);
    this.push();
    return asciiText(bytes, start, start + length);
  }

  /** BINGET or LONG_BINGET: the memo value it pushes, or undefined. */
  memoValue(): PyValue | undefined {
    const index = this.indexArgument(Op.BINGET, Op.LONG_BINGET);
    if (index < 0) return undefined;
    const value = this.run.memoValue(index);
    if (value === undefined) return undefined;
    this.consume(this.bytes[this.pos] === Op.BINGET ? 1 : 4);
    this.push();
    return value;
  }

  /**
   * A BINPUT or LONG_BINPUT, if one comes next (picklers memoize nearly every value). False
   * when there is one that cannot be read, that has no value to store (right after a MARK),
   * or whose entry the pickle reads back (see ShortcutRun.put).
   */
  optionalPut(): boolean {
    const op = this.peek();
    if (op !== Op.BINPUT && op !== Op.LONG_BINPUT) return true;
    const index = this.indexArgument(Op.BINPUT, Op.LONG_BINPUT);
    if (index < 0 || this.depth <= this.base() || !this.run.put(index)) return false;
    this.consume(op === Op.BINPUT ? 1 : 4);
    return true;
  }

  /** The memo index of a `short` (1-byte) or `long` (4-byte) GET or PUT coming next, or -1. */
  private indexArgument(short: number, long: number): number {
    const op = this.peek();
    const at = this.pos + 1;
    if (op === short) return this.fits(1) ? this.bytes[at]! : -1;
    if (op === long) return this.fits(4) ? uint32(this.bytes, at) : -1;
    return -1;
  }
}

/** The little-endian unsigned 32-bit integer at `at`. */
function uint32(bytes: Uint8Array, at: number): number {
  return (
    bytes[at]! + bytes[at + 1]! * 0x100 + bytes[at + 2]! * 0x10000 + bytes[at + 3]! * 0x1000000
  );
}
