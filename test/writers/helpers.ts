/** Shared pieces of the writer tests: tensors in memory, recording sinks, reading files back. */
import { openSafetensors } from "../../src/formats/safetensors/safetensors.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { convertElements } from "../../src/tensors/convert.js";
import { allocate, bytesOf, type DType, type TypedArray } from "../../src/tensors/dtype.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import type { TensorLike } from "../../src/tensors/tensor-like.js";
import type { ByteSink } from "../../src/writers/sink.js";

/** A tensor whose elements are already in memory (read() path, no chunks). */
export function memoryTensor(dtype: DType, shape: readonly number[], data: TypedArray): TensorLike {
  return {
    dtype,
    shape,
    async read(options = {}) {
      const target = options.dtype ?? dtype;
      if (target === dtype) return data.slice();
      const numel = shape.reduce((a, b) => a * b, 1);
      const out = allocate(target, numel);
      convertElements(data, dtype, out, target);
      return out;
    },
  };
}

export interface RecordingSink extends ByteSink {
  /** Copies of every write, in order. */
  writes: Uint8Array[];
  closed: boolean;
  aborted: boolean;
  bytes(): Uint8Array;
}

/** A sink that remembers every call, for checking what a writer did and when. */
export function recordingSink(): RecordingSink {
  const sink: RecordingSink = {
    writes: [],
    closed: false,
    aborted: false,
    async write(bytes) {
      if (sink.closed || sink.aborted) throw new Error("write after close/abort");
      sink.writes.push(bytes.slice());
    },
    async close() {
      sink.closed = true;
    },
    async abort() {
      sink.aborted = true;
    },
    bytes() {
      return concat(sink.writes);
    },
  };
  return sink;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

export interface ReadBack {
  metadata: Readonly<Record<string, string>> | undefined;
  /** Header order. */
  names: string[];
  tensors: Map<string, Tensor>;
  /** Each tensor's raw little-endian bytes. */
  data: Map<string, Uint8Array>;
}

/** Opens `bytes` with loadout's safetensors reader (which applies every rule of the Rust crate). */
export async function readBack(bytes: Uint8Array): Promise<ReadBack> {
  const opened = await openSafetensors(new MemorySource(bytes, "written.safetensors"));
  const tensors = opened.root as Map<string, Tensor>;
  const data = new Map<string, Uint8Array>();
  for (const [name, tensor] of tensors) data.set(name, bytesOf(await tensor.read()));
  return { metadata: opened.metadata, names: [...tensors.keys()], tensors, data };
}

/** The header JSON text (with its padding) and the length prefix of a safetensors file. */
export function headerOf(bytes: Uint8Array): { n: number; text: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, text: new TextDecoder().decode(bytes.subarray(8, 8 + n)) };
}
