/** Shared pieces of the torch writer tests (the in-memory tensors and sinks are the writer tests'). */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import type { Checkpoint } from "../../../src/checkpoint/checkpoint.js";
import { openCheckpoint } from "../../../src/checkpoint/open.js";
import { MemorySource } from "../../../src/io/byte-source.js";
import { byteLengthOf, bytesOf, type DType, viewAs } from "../../../src/tensors/dtype.js";
import type { TensorLike } from "../../../src/tensors/tensor-like.js";

import { memoryTensor } from "../helpers.js";

export { concat, memoryTensor, type RecordingSink, recordingSink } from "../helpers.js";

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Opens bytes with loadout's reader. */
export function openBytes(bytes: Uint8Array, name = "written.pt"): Promise<Checkpoint> {
  return openCheckpoint(new MemorySource(bytes, name));
}

/** The raw little-endian bytes of a tensor's elements, as read by loadout. */
export async function tensorData(tensor: TensorLike): Promise<Uint8Array> {
  return bytesOf(await tensor.read());
}

/** Deterministic pseudo-random bytes (xorshift32), for tensor contents. */
export function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A Python with torch, if this machine has one: /tmp/tv/bin/python, else python3. */
export function findTorchPython(): string | undefined {
  for (const python of ["/tmp/tv/bin/python", "python3"]) {
    if (python.startsWith("/") && !existsSync(python)) continue;
    const probe = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], {
      encoding: "utf8",
    });
    if (probe.status === 0) return python;
  }
  return undefined;
}

/** A plain python3, if there is one. */
export function findPython(): string | undefined {
  const probe = spawnSync("python3", ["-c", "print(1)"], { encoding: "utf8" });
  return probe.status === 0 ? "python3" : undefined;
}

/** Runs a Python script file with arguments; returns its stdout parsed as JSON. */
export function runPythonJson(python: string, script: string, args: string[]): unknown {
  const stdout = execFileSync(python, [script, ...args], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  return JSON.parse(stdout);
}

/** A tensor of `dtype` and `shape` with deterministic contents (bools 0 or 1). */
export function sampleTensor(dtype: DType, shape: number[], seed: number): TensorLike {
  const numel = shape.reduce((a, b) => a * b, 1);
  const bytes = randomBytes(byteLengthOf(dtype, numel)!, seed);
  if (dtype === "bool") for (let i = 0; i < bytes.length; i++) bytes[i]! &= 1;
  // A fresh, aligned buffer so any element type can view it.
  const aligned = new Uint8Array(new ArrayBuffer(Math.ceil(bytes.length / 8) * 8), 0, bytes.length);
  aligned.set(bytes);
  return memoryTensor(dtype, shape, viewAs(dtype, aligned));
}
