/**
 * Builds small files in torch's legacy layout (magic number, protocol version, sys_info, the
 * object, the storage key list, then per key an int64 count and the bytes), with pickles written
 * opcode by opcode, so tests can break each part on purpose. Byte strings of the first two
 * pickles are what Python's pickle writes (protocol 2).
 */

const encoder = new TextEncoder();

/** Python: pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2). */
export const MAGIC_PICKLE = Uint8Array.from([
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
]);

class PickleWriter {
  private parts: number[] = [0x80, 0x02];
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  text(opcode: string): this {
    return this.op(...Array.from(opcode, (c) => c.charCodeAt(0)));
  }
  str(value: string): this {
    const bytes = encoder.encode(value);
    const n = bytes.length;
    return this.op(0x58, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24, ...bytes);
  }
  int(value: number): this {
    if (value >= 0 && value < 256) return this.op(0x4b, value);
    return this.op(
      0x4a,
      value & 0xff,
      (value >> 8) & 0xff,
      (value >> 16) & 0xff,
      (value >>> 24) & 0xff,
    );
  }
  global(module: string, name: string): this {
    return this.text(`c${module}\n${name}\n`);
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.parts, 0x2e]);
  }
}

export interface LegacyTensor {
  name: string;
  /** Root storage key, its element count, and optionally a torch 0.3 view of it. */
  key: string;
  numel: number;
  view?: { key: string; offset: number; size: number };
  /** The tensor: 1-d, `size` elements from `offset` of its storage (or view). */
  offset: number;
  size: number;
}

export interface LegacySpec {
  tensors: LegacyTensor[];
  keys: string[];
  /** Bytes of each storage, written in `keys` order, each after its count. */
  data: Record<string, Uint8Array>;
  /** Count written before each storage (default: its bytes / 4). */
  counts?: Record<string, bigint>;
  /** Write counts big-endian (as pre-1.0 torch did on big-endian machines). */
  bigEndianCounts?: boolean;
  littleEndian?: boolean;
  protocolVersion?: number;
  magic?: Uint8Array;
  /** Persistent ids written as is instead of tensors: a 'module' id, for instance. */
  mainPickle?: Uint8Array;
}

/** A legacy file holding `{name: tensor}` with float32 storages. */
export function legacyFile(spec: LegacySpec): Uint8Array {
  const protocol = new PickleWriter().op(0x4d, ...u16(spec.protocolVersion ?? 1001)).bytes();
  const sysInfo = new PickleWriter()
    .op(0x7d, 0x28)
    .str("protocol_version")
    .op(0x4d, ...u16(1001))
    .str("little_endian")
    .op(spec.littleEndian === false ? 0x89 : 0x88)
    .str("type_sizes")
    .op(0x7d, 0x28)
    .str("short")
    .int(2)
    .str("int")
    .int(4)
    .str("long")
    .int(8)
    .op(0x75, 0x75)
    .bytes();
  const main = spec.mainPickle ?? mainPickle(spec.tensors);
  const keys = new PickleWriter().op(0x5d, 0x28);
  for (const key of spec.keys) keys.str(key);
  const keyList = keys.op(0x65).bytes();

  const storages: number[] = [];
  for (const key of spec.keys) {
    const data = spec.data[key] ?? new Uint8Array(0);
    const count = spec.counts?.[key] ?? BigInt(data.length / 4);
    const header = new DataView(new ArrayBuffer(8));
    header.setBigInt64(0, count, !spec.bigEndianCounts);
    storages.push(...new Uint8Array(header.buffer), ...data);
  }
  return Uint8Array.from([
    ...(spec.magic ?? MAGIC_PICKLE),
    ...protocol,
    ...sysInfo,
    ...main,
    ...keyList,
    ...storages,
  ]);
}

function mainPickle(tensors: readonly LegacyTensor[]): Uint8Array {
  const w = new PickleWriter().op(0x7d, 0x28);
  for (const t of tensors) {
    w.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op(0x28);
    // The persistent id: ('storage', FloatStorage, key, 'cpu', numel, view or None).
    w.op(0x28).str("storage").global("torch", "FloatStorage").str(t.key).str("cpu").int(t.numel);
    if (t.view) w.str(t.view.key).int(t.view.offset).int(t.view.size).op(0x87);
    else w.op(0x4e);
    w.op(0x74, 0x51);
    // storage_offset, size, stride, requires_grad, backward_hooks.
    w.int(t.offset).int(t.size).op(0x85).int(1).op(0x85).op(0x89);
    w.global("collections", "OrderedDict").op(0x29, 0x52);
    w.op(0x74, 0x52);
  }
  return w.op(0x75).bytes();
}

/** A pickle whose object is one persistent id: ('module', mylib.Net, 'net.py', 'source'). */
export function modulePickle(): Uint8Array {
  return new PickleWriter()
    .op(0x28)
    .str("module")
    .global("mylib", "Net")
    .str("net.py")
    .str("class Net: ...")
    .op(0x74, 0x51)
    .bytes();
}

export function floats(...values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function u16(value: number): number[] {
  return [value & 0xff, (value >> 8) & 0xff];
}
