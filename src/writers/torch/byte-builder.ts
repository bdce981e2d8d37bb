/** Scratch for BINFLOAT's big-endian doubles. */
const floatView = new DataView(new ArrayBuffer(8));

/**
 * An output buffer that grows as bytes are appended (pickles, zip headers). Integers are stored
 * byte by byte: a DataView per small buffer costs more than the header it writes.
 */
export class ByteBuilder {
  private buffer: Uint8Array;
  length = 0;

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(Math.max(initialCapacity, 8));
  }

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  byte(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  /** `count` copies of `value`. */
  fill(value: number, count: number): this {
    this.reserve(count);
    this.buffer.fill(value, this.length, this.length + count);
    this.length += count;
    return this;
  }

  bytes(values: Uint8Array): this {
    this.reserve(values.length);
    this.buffer.set(values, this.length);
    this.length += values.length;
    return this;
  }

  /** Little-endian, like every integer below (pickle and zip both use little-endian). */
  u16(value: number): this {
    this.reserve(2);
    this.buffer[this.length++] = value;
    this.buffer[this.length++] = value >>> 8;
    return this;
  }

  /** Unsigned or signed: the low 32 bits of `value` in two's complement. */
  u32(value: number): this {
    this.reserve(4);
    const b = this.buffer;
    b[this.length++] = value;
    b[this.length++] = value >>> 8;
    b[this.length++] = value >>> 16;
    b[this.length++] = value >>> 24;
    return this;
  }

  /** An unsigned 64-bit integer (any safe integer). */
  u64(value: number): this {
    this.u32(value % 0x100000000);
    return this.u32(Math.floor(value / 0x100000000));
  }

  /** A float64, big-endian (pickle's BINFLOAT). */
  f64be(value: number): this {
    floatView.setFloat64(0, value, false);
    this.reserve(8);
    for (let i = 0; i < 8; i++) this.buffer[this.length++] = floatView.getUint8(i);
    return this;
  }

  /** Everything appended (the buffer itself when it is exactly full). */
  toBytes(): Uint8Array {
    return this.length === this.buffer.length ? this.buffer : this.buffer.slice(0, this.length);
  }
}
