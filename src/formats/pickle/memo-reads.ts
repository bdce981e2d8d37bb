import { Op } from "./opcodes.js";

/**
 * Which memo entries a pickle will ever read, found before unpickling by walking its opcodes
 * without executing any. Picklers memoize nearly every object, but a torch checkpoint reads back
 * only a handful (the rebuild function, the storage class, 'cpu'...): the rest of the memo would
 * keep every intermediate tuple and argument list alive until the end, and a 20,000-tensor
 * checkpoint's garbage collection then copied all of them, twice, while unpickling. The
 * unpickler stores `None` instead of entries nobody reads, so those values die young.
 *
 * The walk reads each opcode's argument exactly as the unpickler does, so both see the same
 * opcodes up to the first STOP. Whenever it cannot be sure (a text-mode GET, whose index is
 * parsed from text; an unknown opcode; a negative length; data ending early), it answers
 * undefined and the unpickler keeps every entry, as it always did.
 */
export interface MemoReads {
  has(index: number): boolean;
}

export function findMemoReads(bytes: Uint8Array, start: number): MemoReads | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const reads = new ReadIndices(bytes.length);
  const end = bytes.length;
  let at = start;
  while (at < end) {
    const op = bytes[at++]!;
    // The opcodes torch.save writes a tensor with, first, without the table and its branches:
    // a 20,000-tensor checkpoint is 640,000 opcodes. An argument running past the end leaves
    // `at` past it, and the walk then ends without a STOP, unsure, as below.
    switch (op) {
      case Op.LONG_BINPUT:
        at += 4;
        continue;
      case Op.BINPUT:
      case Op.BININT1:
        at += 1;
        continue;
      case Op.BINGET:
        if (at >= end) return undefined;
        reads.add(bytes[at]!);
        at += 1;
        continue;
      case Op.MARK:
      case Op.EMPTY_TUPLE:
      case Op.TUPLE:
      case Op.TUPLE2:
      case Op.REDUCE:
      case Op.BINPERSID:
      case Op.NEWFALSE:
        continue;
      case Op.BINUNICODE:
        if (end - at < 4) return undefined;
        at += 4 + view.getUint32(at, true);
        continue;
    }
    const kind = ARGUMENT[op]!;
    let length: number;
    if (kind >= 0) {
      length = kind;
    } else if (kind === STOP) {
      return reads;
    } else {
      length = variableLength(kind, bytes, view, at);
      if (length < 0) return undefined;
    }
    if (length > end - at) return undefined;
    if (op === Op.BINGET) reads.add(bytes[at]!);
    else if (op === Op.LONG_BINGET) reads.add(view.getUint32(at, true));
    at += length;
  }
  return undefined;
}

/**
 * A set of memo indices: a bitmap for those below the pickle's length in bytes (any index a
 * MEMOIZE or a reasonable PUT makes; at most an eighth of the pickle's size, allocated on the
 * first index past 255), a Set for the rest.
 */
class ReadIndices implements MemoReads {
  private bits = new Uint8Array(32);
  private large: Set<number> | undefined;
  constructor(private readonly limit: number) {}

  add(index: number): void {
    if (index >= this.limit) {
      this.large ??= new Set();
      this.large.add(index);
      return;
    }
    if (index >>> 3 >= this.bits.length) {
      const grown = new Uint8Array((this.limit >>> 3) + 1);
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[index >>> 3]! |= 1 << (index & 7);
  }

  has(index: number): boolean {
    if (index >= this.limit) return this.large?.has(index) ?? false;
    const byte = index >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (index & 7))) !== 0;
  }
}

/**
 * One set kept for the life of the module, so that its hidden class (and the optimized code of
 * add and has) outlives a full garbage collection: see SHAPE_KEEPERS in values.ts.
 */
export const READ_INDICES_SHAPE_KEEPER: MemoReads = new ReadIndices(0);

// What follows each opcode byte: a fixed number of bytes (≥ 0), or one of these kinds.
const STOP = -1;
const UNSURE = -2;
const U8_LENGTH = -3;
const U32_LENGTH = -4;
const I32_LENGTH = -5;
const U64_LENGTH = -6;
const ONE_LINE = -7;
const TWO_LINES = -8;

/** Argument kind of every byte; UNSURE for bytes that are no opcode, and for GET (parsed text). */
const ARGUMENT = (() => {
  const table = new Int8Array(256).fill(UNSURE);
  const set = (kind: number, ops: number[]) => {
    for (const op of ops) table[op] = kind;
  };
  set(0, [
    Op.MARK,
    Op.EMPTY_TUPLE,
    Op.POP,
    Op.POP_MARK,
    Op.DUP,
    Op.NONE,
    Op.BINPERSID,
    Op.REDUCE,
    Op.EMPTY_LIST,
    Op.APPEND,
    Op.BUILD,
    Op.DICT,
    Op.APPENDS,
    Op.LIST,
    Op.OBJ,
    Op.SETITEM,
    Op.TUPLE,
    Op.SETITEMS,
    Op.EMPTY_DICT,
    Op.NEWOBJ,
    Op.TUPLE1,
    Op.TUPLE2,
    Op.TUPLE3,
    Op.NEWTRUE,
    Op.NEWFALSE,
    Op.EMPTY_SET,
    Op.ADDITEMS,
    Op.FROZENSET,
    Op.NEWOBJ_EX,
    Op.STACK_GLOBAL,
    Op.MEMOIZE,
    Op.NEXT_BUFFER,
    Op.READONLY_BUFFER,
  ]);
  set(1, [Op.BININT1, Op.BINGET, Op.BINPUT, Op.PROTO, Op.EXT1]);
  set(2, [Op.BININT2, Op.EXT2]);
  set(4, [Op.BININT, Op.LONG_BINGET, Op.LONG_BINPUT, Op.EXT4]);
  set(8, [Op.BINFLOAT, Op.FRAME]);
  set(STOP, [Op.STOP]);
  set(U8_LENGTH, [Op.SHORT_BINUNICODE, Op.SHORT_BINBYTES, Op.SHORT_BINSTRING, Op.LONG1]);
  set(U32_LENGTH, [Op.BINUNICODE, Op.BINBYTES]);
  set(I32_LENGTH, [Op.BINSTRING, Op.LONG4]);
  set(U64_LENGTH, [Op.BINUNICODE8, Op.BINBYTES8, Op.BYTEARRAY8]);
  set(ONE_LINE, [Op.INT, Op.LONG, Op.FLOAT, Op.STRING, Op.UNICODE, Op.PERSID, Op.PUT]);
  set(TWO_LINES, [Op.GLOBAL, Op.INST]);
  return table;
})();

/**
 * Bytes of a length-prefixed or line argument starting at `at`, or -1 when the walk must give
 * up (a length field past the data, a negative length, a missing newline, GET, no opcode).
 */
function variableLength(kind: number, bytes: Uint8Array, view: DataView, at: number): number {
  const left = bytes.length - at;
  switch (kind) {
    case U8_LENGTH:
      return left < 1 ? -1 : 1 + bytes[at]!;
    case U32_LENGTH:
      return left < 4 ? -1 : 4 + view.getUint32(at, true);
    case I32_LENGTH: {
      const n = left < 4 ? -1 : view.getInt32(at, true);
      return n < 0 ? -1 : 4 + n;
    }
    case U64_LENGTH:
      return left < 8 ? -1 : 8 + view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
    case ONE_LINE:
      return linesLength(bytes, at, 1);
    case TWO_LINES:
      return linesLength(bytes, at, 2);
    default:
      return -1;
  }
}

/** Bytes up to and including the `count`-th newline from `at`, or -1 if there are fewer. */
function linesLength(bytes: Uint8Array, at: number, count: number): number {
  let position = at;
  for (let i = 0; i < count; i++) {
    const newline = bytes.indexOf(0x0a, position);
    if (newline < 0) return -1;
    position = newline + 1;
  }
  return position - at;
}
