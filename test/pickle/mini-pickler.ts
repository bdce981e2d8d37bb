import { Op } from "../../src/formats/pickle/opcodes.js";

/**
 * A minimal protocol-2 pickler that writes what CPython's pickler writes for the same objects
 * (memo PUTs for every str, tuple, list, dict, global and reduce result; batches of 1,000 for
 * APPENDS / SETITEMS; BINPUT below 256, LONG_BINPUT above), so tests can build checkpoints far
 * larger than a fixture file should be. It counts the memo entries and opcodes it writes.
 * Recursive data is not supported (CPython's POP_MARK trick for recursive tuples is left out).
 */

export type PyNode =
  | null
  | boolean
  | number
  | string
  | { tuple: PyNode[] }
  | { list: PyNode[] }
  | { dict: [PyNode, PyNode][] }
  | { global: [string, string] }
  | { reduce: [PyNode, PyNode[]]; items?: [PyNode, PyNode][]; state?: PyNode }
  | { persid: PyNode };

const BATCH = 1000;

export class MiniPickler {
  private out = new Uint8Array(1 << 16);
  private length = 0;
  private readonly memo = new Map<unknown, number>();
  opcodes = 0;

  get memoEntries(): number {
    return this.memo.size;
  }

  dump(root: PyNode): Uint8Array {
    this.op(Op.PROTO, 2);
    this.save(root);
    this.op(Op.STOP);
    return this.out.slice(0, this.length);
  }

  private byte(value: number): void {
    if (this.length === this.out.length) {
      const bigger = new Uint8Array(this.out.length * 2);
      bigger.set(this.out);
      this.out = bigger;
    }
    this.out[this.length++] = value;
  }

  private op(code: number, ...operand: number[]): void {
    this.opcodes++;
    this.byte(code);
    for (const value of operand) this.byte(value);
  }

  private u32(value: number): number[] {
    return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
  }

  /** Writes a GET for `key` if it was memoized; true when it was. */
  private get(key: unknown): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    if (index < 256) this.op(Op.BINGET, index);
    else this.op(Op.LONG_BINGET, ...this.u32(index));
    return true;
  }

  private put(key: unknown): void {
    const index = this.memo.size;
    this.memo.set(key, index);
    if (index < 256) this.op(Op.BINPUT, index);
    else this.op(Op.LONG_BINPUT, ...this.u32(index));
  }

  private save(node: PyNode): void {
    if (node === null) this.op(Op.NONE);
    else if (typeof node === "boolean") this.op(node ? Op.NEWTRUE : Op.NEWFALSE);
    else if (typeof node === "number") this.saveNumber(node);
    else if (typeof node === "string") this.saveString(node);
    else if (this.get(node)) {
      // Already pickled: the GET was written.
    } else if ("tuple" in node) this.saveTuple(node);
    else if ("list" in node) {
      this.op(Op.EMPTY_LIST);
      this.put(node);
      this.batch(node.list, (item) => this.save(item), Op.APPENDS, Op.APPEND);
    } else if ("dict" in node) {
      this.op(Op.EMPTY_DICT);
      this.put(node);
      this.saveItems(node.dict);
    } else if ("global" in node) {
      this.opcodes++;
      for (const ch of `c${node.global[0]}\n${node.global[1]}\n`) this.byte(ch.charCodeAt(0));
      this.put(node);
    } else if ("persid" in node) {
      this.save(node.persid);
      this.op(Op.BINPERSID);
    } else this.saveReduce(node);
  }

  private saveReduce(node: {
    reduce: [PyNode, PyNode[]];
    items?: [PyNode, PyNode][];
    state?: PyNode;
  }): void {
    this.save(node.reduce[0]);
    this.saveTuple({ tuple: node.reduce[1] });
    this.op(Op.REDUCE);
    this.put(node);
    if (node.items) this.saveItems(node.items);
    if (node.state !== undefined) {
      this.save(node.state);
      this.op(Op.BUILD);
    }
  }

  private saveString(text: string): void {
    // CPython memoizes string objects; equal strings here stand for one shared object.
    if (this.get(`str:${text}`)) return;
    const encoded = new TextEncoder().encode(text);
    this.op(Op.BINUNICODE, ...this.u32(encoded.length), ...encoded);
    this.put(`str:${text}`);
  }

  private saveNumber(value: number): void {
    if (!Number.isInteger(value)) {
      const float = new Uint8Array(8);
      new DataView(float.buffer).setFloat64(0, value, false);
      this.op(Op.BINFLOAT, ...float);
    } else if (value >= 0 && value < 256) this.op(Op.BININT1, value);
    else if (value >= 0 && value < 65536) this.op(Op.BININT2, value & 0xff, value >>> 8);
    else this.op(Op.BININT, ...this.u32(value));
  }

  private saveTuple(node: { tuple: PyNode[] }): void {
    const items = node.tuple;
    if (items.length === 0) {
      this.op(Op.EMPTY_TUPLE);
      return;
    }
    if (items.length > 3) this.op(Op.MARK);
    for (const item of items) this.save(item);
    this.op(items.length > 3 ? Op.TUPLE : [Op.TUPLE1, Op.TUPLE2, Op.TUPLE3][items.length - 1]!);
    this.put(node);
  }

  private saveItems(items: [PyNode, PyNode][]): void {
    this.batch(
      items,
      ([key, value]) => {
        this.save(key);
        this.save(value);
      },
      Op.SETITEMS,
      Op.SETITEM,
    );
  }

  private batch<T>(items: T[], save: (item: T) => void, many: number, one: number): void {
    for (let start = 0; start < items.length; start += BATCH) {
      const chunk = items.slice(start, start + BATCH);
      if (chunk.length > 1) this.op(Op.MARK);
      for (const item of chunk) save(item);
      this.op(chunk.length > 1 ? many : one);
    }
  }
}
