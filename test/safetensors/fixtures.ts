/** The generated fixtures (test/fixtures/safetensors, written by generate.py) and their expectations. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { MemorySource } from "../../src/io/byte-source.js";
import { dtypeInfo, type TypedArray } from "../../src/tensors/dtype.js";
import type { Tensor } from "../../src/tensors/tensor.js";

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../fixtures/safetensors");

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  /** Numbers, or decimal strings for 64-bit integers, or raw bytes for float8/float4. */
  values: (number | string)[];
  sum: number | string;
}

export interface ExpectedFile {
  metadata: Record<string, string> | null;
  tensors: Record<string, ExpectedTensor>;
}

export const expected: Record<string, ExpectedFile> = JSON.parse(
  readFileSync(join(FIXTURES, "expected.json"), "utf8"),
);

/** A fixture file in memory, so tests can count the bytes read. */
export function fixtureSource(name: string): MemorySource {
  return new MemorySource(new Uint8Array(readFileSync(join(FIXTURES, name))), name);
}

/** Widens a read result to plain numbers or bigints for comparison. */
export function values(array: TypedArray): (number | bigint)[] {
  return Array.from(array as ArrayLike<number | bigint>);
}

/**
 * Reads `tensor` every way a loader would and compares with numpy's values: in its own dtype,
 * and (for numeric floats) converted to float32 both by read() and by readInto().
 */
export async function expectTensorMatches(tensor: Tensor, want: ExpectedTensor): Promise<void> {
  const info = dtypeInfo(tensor.dtype);
  expect(info.safetensors).toBe(want.dtype);
  expect(tensor.shape).toEqual(want.shape);
  expect(tensor.numel).toBe(want.shape.reduce((a, b) => a * b, 1));

  const own = await tensor.read();
  const is64 = want.dtype === "I64" || want.dtype === "U64";
  if (is64) {
    expect(values(own)).toEqual(want.values.map((v) => BigInt(v)));
    const sum = values(own).reduce<bigint>((a, b) => a + BigInt(b), 0n);
    expect(sum).toBe(BigInt(want.sum));
    return;
  }
  if (want.dtype === "F16" || want.dtype === "BF16") {
    // Raw bits in the tensor's own dtype; values through conversion.
    expect(own).toBeInstanceOf(Uint16Array);
    const converted = await tensor.read({ dtype: "float32" });
    expect(values(converted)).toEqual(want.values);
    const into = new Float32Array(tensor.numel);
    await tensor.readInto(into, { dtype: "float32" });
    expect(values(into)).toEqual(want.values);
    expectSum(values(into), want.sum);
    return;
  }
  expect(values(own)).toEqual(want.values);
  expectSum(values(own), want.sum);
  if (info.kind === "float" || info.kind === "int" || info.kind === "uint") {
    const into = new Float32Array(tensor.numel);
    await tensor.readInto(into, { dtype: "float32" });
    expect(values(into)).toEqual(want.values.map((v) => Math.fround(Number(v))));
  }
}

function expectSum(values: (number | bigint)[], want: number | string): void {
  const sum = values.reduce<number>((a, b) => a + Number(b), 0);
  const tolerance = 1e-9 * Math.max(1, ...values.map((v) => Math.abs(Number(v))));
  expect(Math.abs(sum - Number(want))).toBeLessThanOrEqual(tolerance * values.length);
}
