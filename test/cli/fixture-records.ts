/**
 * What the CLI tests compare against: what PyTorch recorded about each torch fixture
 * (test/fixtures/torch/expected.json, written by generate.py), the fixtures' values read straight
 * from the bytes where torch said its storages are, and safetensors files built by the spec.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const TORCH = fileURLToPath(new URL("../fixtures/torch/", import.meta.url));
export const torchFile = (name: string) => join(TORCH, name);

export interface ExpectedTensor {
  path: (string | number)[];
  dtype: string;
  shape: number[];
  numel: number;
  storageOffset: number;
  isContiguous: boolean;
  storage: { key: string };
  /** The first elements as torch printed them (NaN and infinities as strings). */
  first: (number | string)[];
}
export interface ExpectedFile {
  format: string;
  storages: { key: string; dataOffset: number; nbytes: number }[];
  tensors: ExpectedTensor[];
  tensorCount: number;
}
export const expected: Record<string, ExpectedFile> = JSON.parse(
  readFileSync(torchFile("expected.json"), "utf8"),
).files;

/**
 * A net fixture's values by key (the last path segment, with `prefix` removed; keys without it
 * are left out), decoded from the file's bytes (little-endian float32 / int64).
 */
export function rawValues(file: string, prefix = ""): Map<string, number[]> {
  const bytes = readFileSync(torchFile(file));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Map<string, number[]>();
  for (const t of expected[file]!.tensors) {
    const storage = expected[file]!.storages.find((s) => s.key === t.storage.key)!;
    const size = t.dtype === "int64" ? 8 : 4;
    const start = storage.dataOffset + t.storageOffset * size;
    const read = (i: number) =>
      t.dtype === "int64"
        ? Number(view.getBigInt64(start + i * 8, true))
        : view.getFloat32(start + i * 4, true);
    const key = String(t.path.at(-1));
    if (key.startsWith(prefix)) {
      values.set(
        key.slice(prefix.length),
        Array.from({ length: t.numel }, (_, i) => read(i)),
      );
    }
  }
  return values;
}

/** A safetensors file built by hand: tensors in the order given, header padded with spaces. */
export function buildSafetensors(
  tensors: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + t.data.byteLength],
    };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
