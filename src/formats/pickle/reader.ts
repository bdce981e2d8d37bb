import { PickleError } from "../../errors.js";
import { latin1Text } from "../latin1.js";
import { limitExceeded } from "./limits.js";
import { opcodeName } from "./opcodes.js";
import { decodeLong, decodeUtf8, decodeUtf8SurrogatePass, parseIntLiteral } from "./text.js";
import type { PickleLimits } from "./types.js";
import type { PyValue } from "./values.js";

/** Memo indices written as text (PUT / GET): Python's int(x) in base 10, non-negative. */
const MEMO_INDEX = /^\s*\+?\d(?:_?\d)*\s*$/;

/**
 * The bytes of one pickle as the unpickler reads them: every read checked against the end of
 * the data and of the current frame before anything is taken, lengths checked against the
 * limits before anything is allocated, and every error located at the opcode being executed.
 */
export class PickleReader {
  view: DataView;
  /** Next byte to read. */
  pos: number;
  /** Offset of the opcode being executed, for error locations. */
  opStart: number;
  /** Reads must end at or before this: the current frame's end, or the end of the bytes. */
  private limit: number;
  /** End of the current frame, or -1 outside frames. */
  private frameEnd = -1;

  constructor(
    public bytes: Uint8Array,
    start: number,
    private readonly file: string | undefined,
    private readonly baseOffset: number,
    private readonly limits: PickleLimits,
  ) {
    if (!Number.isSafeInteger(start) || start < 0 || start > bytes.length) {
      throw new PickleError(
        "BAD_START",
        `pickle start ${start} is outside the ${bytes.length} bytes given`,
        {
          file,
        },
      );
    }
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.opStart = start;
    this.limit = bytes.length;
  }

  /** Lets go of the pickle's bytes once unpickling is over (the machine may be kept). */
  release(empty: Uint8Array): void {
    this.bytes = empty;
    this.view = new DataView(empty.buffer, empty.byteOffset, empty.byteLength);
    this.pos = 0;
    this.opStart = 0;
    this.limit = 0;
    this.frameEnd = -1;
  }

  /** Where the current opcode is, for errors. */
  where(): { file: string | undefined; offset: number } {
    return { file: this.file, offset: this.baseOffset + this.opStart };
  }

  fail(code: string, what: string, hint?: string): PickleError {
    return new PickleError(code, what, { ...this.where(), hint });
  }

  /** Where reads must end: the end of the current frame, or of the bytes. */
  get readLimit(): number {
    return this.limit;
  }

  /** Moves past bytes read elsewhere (a CallShortcut), which must lie within readLimit. */
  skipTo(end: number): void {
    if (end < this.pos || end > this.limit) {
      throw this.fail("BAD_SKIP", `cannot skip to offset ${end} from ${this.pos}`);
    }
    this.pos = end;
  }

  /** Starts the next opcode: remembers where it is and returns its byte. */
  opcode(): number {
    this.opStart = this.pos;
    return this.bytes[this.take(1)]!;
  }

  /** FRAME: the next `size` bytes form a frame, which must lie inside the data. */
  enterFrame(size: number): void {
    if (this.frameEnd >= 0 && this.pos < this.frameEnd) {
      throw this.fail(
        "FRAME_BOUNDARY",
        `a new FRAME begins ${this.frameEnd - this.pos} bytes before the current frame ends`,
      );
    }
    if (size > this.bytes.length - this.pos) throw this.truncated(size);
    this.frameEnd = this.pos + size;
    this.limit = this.frameEnd;
  }

  /** Claims the next `n` bytes and returns where they start. */
  take(n: number): number {
    const at = this.pos;
    if (at + n <= this.limit) {
      this.pos = at + n;
      return at;
    }
    this.leaveExhaustedFrame(n);
    if (at + n > this.limit) throw this.truncated(n);
    this.pos = at + n;
    return at;
  }

  /**
   * CPython's _Unframer: a read that needs more than the frame has left is an error ("pickle
   * exhausted before end of frame"); once a frame is used up, reads continue outside it. One
   * rule stricter than the _Unframer: an opcode that starts inside a frame must end inside it.
   * CPython's pickler never splits an opcode across a frame's end (it writes large objects
   * outside frames, header and all), and a split lets a scanner and a loader see different data.
   */
  private leaveExhaustedFrame(n: number): void {
    if (this.frameEnd < 0) return;
    if (this.pos < this.frameEnd || this.opStart < this.frameEnd) {
      const op = opcodeName(this.bytes[this.opStart]!);
      const end = this.baseOffset + this.frameEnd;
      throw this.fail(
        "FRAME_BOUNDARY",
        this.pos < this.frameEnd
          ? `${op} needs ${n} bytes but its frame (ending at offset ${end}) has ${this.frameEnd - this.pos} left`
          : `${op} starts inside a frame ending at offset ${end} but reads ${n} more bytes after it`,
        "A pickler never lets data straddle a frame: the file is corrupt or crafted.",
      );
    }
    this.frameEnd = -1;
    this.limit = this.bytes.length;
  }

  private truncated(n: number): PickleError {
    return this.fail(
      "TRUNCATED",
      `pickle data ends inside ${opcodeName(this.bytes[this.opStart] ?? 0x2e)}: ${n} bytes needed at offset ${this.baseOffset + this.pos}, ${this.bytes.length - this.pos} left`,
      "The file is truncated.",
    );
  }

  /** Claims a text line; returns its start, with `pos` just past its newline (excluded). */
  line(): [number, number] {
    if (this.pos === this.frameEnd) this.leaveExhaustedFrame(1);
    const start = this.pos;
    const newline = this.bytes.indexOf(0x0a, start);
    if (newline < 0 || newline >= this.limit) {
      if (this.frameEnd >= 0) {
        throw this.fail(
          "FRAME_BOUNDARY",
          `${opcodeName(this.bytes[this.opStart]!)} line crosses the end of its frame`,
        );
      }
      throw this.truncated(1);
    }
    if (newline - start > this.limits.maxStringBytes) {
      throw limitExceeded(
        "maxStringBytes",
        `a ${newline - start}-byte text line`,
        this.limits.maxStringBytes,
        this.where(),
      );
    }
    this.pos = newline + 1;
    return [start, newline];
  }

  lineText(): string {
    const [start, end] = this.line();
    return latin1Text(this.bytes, start, end);
  }

  /** A UTF-8 line (GLOBAL / INST module and name). */
  lineUtf8(): string {
    const [start, end] = this.line();
    const text = decodeUtf8(this.bytes, start, end);
    if (text === undefined) throw this.fail("BAD_STRING", "global name is not valid UTF-8");
    return text;
  }

  uint32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  /** A 64-bit length: exact up to 2^53, and beyond that still larger than any limit. */
  uint64(): number {
    const at = this.take(8);
    return this.view.getUint32(at + 4, true) * 2 ** 32 + this.view.getUint32(at, true);
  }

  /** Claims `n` bytes of a string or bytes object, checked against the limit first. */
  payload(n: number): number {
    if (n > this.limits.maxStringBytes) {
      throw limitExceeded(
        "maxStringBytes",
        `a ${n}-byte string`,
        this.limits.maxStringBytes,
        this.where(),
      );
    }
    return this.take(n);
  }

  utf8String(n: number): string {
    const at = this.payload(n);
    return decodeUtf8SurrogatePass(this.bytes, at, at + n);
  }

  byteString(n: number): Uint8Array {
    const at = this.payload(n);
    return this.bytes.slice(at, at + n);
  }

  /** A Python 2 str: text when it is UTF-8 (as torch.load's encoding='utf-8'), else bytes. */
  python2String(n: number): PyValue {
    const at = this.payload(n);
    return decodeUtf8(this.bytes, at, at + n) ?? this.bytes.slice(at, at + n);
  }

  longBytes(n: number): PyValue {
    if (n > this.limits.maxLongBytes) {
      throw limitExceeded(
        "maxLongBytes",
        `a ${n}-byte integer`,
        this.limits.maxLongBytes,
        this.where(),
      );
    }
    const at = this.take(n);
    return decodeLong(this.bytes, at, at + n);
  }

  /** INT / LONG text: CPython's int(x, 0), with "00" / "01" meaning False / True for INT. */
  textInt(isLong: boolean): PyValue {
    let text = this.lineText();
    if (!isLong && (text === "00" || text === "01")) return text === "01";
    if (isLong && text.endsWith("L")) text = text.slice(0, -1);
    // Binary digits are the longest spelling of a maxLongBytes integer.
    if (text.length > this.limits.maxLongBytes * 8 + 4) {
      throw limitExceeded(
        "maxLongBytes",
        `a ${text.length}-character integer`,
        this.limits.maxLongBytes,
        this.where(),
      );
    }
    return parseIntLiteral(text);
  }

  memoIndexText(): number {
    const text = this.lineText();
    const index = MEMO_INDEX.test(text) ? Number(text.trim().replaceAll("_", "")) : Number.NaN;
    if (!Number.isSafeInteger(index)) {
      throw this.fail(
        "BAD_MEMO_INDEX",
        `memo index '${text.slice(0, 40)}' is not a non-negative integer`,
      );
    }
    return index;
  }
}
