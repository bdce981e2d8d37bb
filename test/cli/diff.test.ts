import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildSafetensors, expected, rawValues, TORCH, torchFile } from "./fixture-records.js";
import { runCli } from "./run-cli.js";

const cli = (...args: string[]) => runCli(args);

interface DiffJson {
  equal: boolean;
  onlyInA: string[];
  onlyInB: string[];
  shapeMismatches: { key: string; a: number[]; b: number[] }[];
  dtypeMismatches: { key: string; a: string; b: string }[];
  tensors: {
    key: string;
    maxAbs: number | string | null;
    maxRel: number | string | null;
    equal: boolean;
  }[];
}

async function diffJson(...args: string[]): Promise<{ code: number; json: DiffJson }> {
  const result = await cli("diff", ...args, "--json");
  expect(result.stderr).toBe("");
  return { code: result.code, json: JSON.parse(result.stdout) };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "loadout-diff-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const NET_KEYS = () => expected["net_state_dict.pt"]!.tensors.map((t) => String(t.path[0]));

describe("diff: equal checkpoints", () => {
  it("exits 0 for the same weights in different files (zip, legacy, protocol 2, big-endian)", async () => {
    for (const other of [
      "net_state_dict.pt",
      "net_legacy.pt",
      "net_protocol2.pt",
      "net_bigendian.pt",
    ]) {
      const { code, json } = await diffJson(torchFile("net_state_dict.pt"), torchFile(other));
      expect(code, other).toBe(0);
      expect(json).toEqual({
        equal: true,
        onlyInA: [],
        onlyInB: [],
        shapeMismatches: [],
        dtypeMismatches: [],
        tensors: NET_KEYS().map((key) => ({ key, maxAbs: 0, maxRel: 0, equal: true })),
      });
    }
  });

  it("compares across formats (torch vs its safetensors conversion)", async () => {
    const converted = join(dir, "net.safetensors");
    expect((await cli("convert", torchFile("net_state_dict.pt"), converted)).code).toBe(0);
    const result = await cli("diff", torchFile("net_state_dict.pt"), converted);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Equal: 13 of 13 tensors compared are equal exactly;");
  });

  it("--all compares every tensor of the tree by path, optimizer state too", async () => {
    const { code, json } = await diffJson(
      torchFile("lightning.ckpt"),
      torchFile("lightning.ckpt"),
      "--all",
    );
    expect(code).toBe(0);
    expect(json.tensors).toHaveLength(expected["lightning.ckpt"]!.tensorCount);
    expect(json.tensors.map((t) => t.key)).toContain("optimizer_states/0/state/0/exp_avg");
    expect(json.tensors.map((t) => t.key)).toContain("state_dict/model.conv.weight");
  });
});

describe("diff: differences", () => {
  it("reports the max absolute and relative difference of every tensor, computed from both files' values", async () => {
    const { code, json } = await diffJson(
      torchFile("net_state_dict.pt"),
      torchFile("net_fresh.pt"),
    );
    expect(code).toBe(1);
    const a = rawValues("net_state_dict.pt");
    const b = rawValues("net_fresh.pt");
    const want = NET_KEYS().map((key) => {
      let maxAbs = 0;
      let maxRel = 0;
      a.get(key)!.forEach((x, i) => {
        const y = b.get(key)![i]!;
        const abs = Math.abs(x - y);
        const scale = Math.max(Math.abs(x), Math.abs(y));
        maxAbs = Math.max(maxAbs, abs);
        maxRel = Math.max(maxRel, scale === 0 ? 0 : abs / scale);
      });
      return { key, maxAbs, maxRel, equal: maxAbs === 0 };
    });
    expect(json).toEqual({
      equal: false,
      onlyInA: [],
      onlyInB: [],
      shapeMismatches: [],
      dtypeMismatches: [],
      tensors: want,
    });
    // Initialisation differs in weights and biases; BatchNorm and LayerNorm start at 1, 0, 0, 1.
    expect(
      want
        .filter((t) => !t.equal)
        .map((t) => t.key)
        .sort(),
    ).toEqual(["conv.bias", "conv.weight", "fc.bias", "fc.weight", "head.bias", "head.weight"]);
  });

  it("applies --atol to |a − b| and --rtol to max(|a|, |b|)", async () => {
    const a = rawValues("net_state_dict.pt");
    const b = rawValues("net_fresh.pt");
    let largest = 0;
    for (const [key, x] of a) {
      for (const [i, v] of x.entries()) largest = Math.max(largest, Math.abs(v - b.get(key)![i]!));
    }
    const files = [torchFile("net_state_dict.pt"), torchFile("net_fresh.pt")];
    expect((await cli("diff", ...files, "--atol", String(largest))).code).toBe(0);
    const below = await diffJson(...files, "--atol", String(largest * (1 - 2 ** -20)));
    expect(below.code).toBe(1);
    // Exactly the tensor holding the largest difference fails.
    expect(below.json.tensors.filter((t) => !t.equal)).toHaveLength(1);
    // |a − b| ≤ 2·max(|a|, |b|) always; these nets' relative differences reach about 2.
    expect((await cli("diff", ...files, "--rtol", "2")).code).toBe(0);
    expect((await cli("diff", ...files, "--rtol", "0.5")).code).toBe(1);
  });

  it("lists keys only in one file, and shape and dtype differences", async () => {
    const prefixed = await diffJson(
      torchFile("net_state_dict.pt"),
      torchFile("net_module_prefix.pt"),
    );
    expect(prefixed.code).toBe(1);
    expect(prefixed.json.onlyInA).toEqual(NET_KEYS());
    expect(prefixed.json.onlyInB).toEqual(NET_KEYS().map((key) => `module.${key}`));
    expect(prefixed.json.tensors).toEqual([]);

    const wide = await diffJson(torchFile("net_fresh.pt"), torchFile("net_wide_fresh.pt"));
    expect(wide.code).toBe(1);
    expect(wide.json.shapeMismatches).toEqual([
      { key: "head.weight", a: [10, 16], b: [12, 16] },
      { key: "head.bias", a: [10], b: [12] },
    ]);
    expect(wide.json.tensors.map((t) => t.key)).not.toContain("head.weight");

    const half = join(dir, "half.safetensors");
    expect(
      (await cli("convert", torchFile("net_state_dict.pt"), half, "--dtype", "bfloat16")).code,
    ).toBe(0);
    const typed = await diffJson(torchFile("net_state_dict.pt"), half);
    expect(typed.code).toBe(1);
    expect(typed.json.dtypeMismatches).toEqual(
      NET_KEYS()
        .filter((key) => key !== "bn.num_batches_tracked")
        .map((key) => ({ key, a: "float32", b: "bfloat16" })),
    );
    // Values are still compared: bfloat16 rounding moves each by at most 2^-8 of itself.
    for (const t of typed.json.tensors) expect(t.maxRel as number).toBeLessThanOrEqual(2 ** -8);
  });

  it("treats NaN as equal to NaN, and NaN against a number as a difference of nan", async () => {
    const file = (name: string, values: number[]) => {
      const path = join(dir, name);
      return writeFile(
        path,
        buildSafetensors({
          x: { dtype: "F32", shape: [values.length], data: Float32Array.from(values) },
        }),
      ).then(() => path);
    };
    const base = await file("a.safetensors", [Number.NaN, 1, Infinity, -0, 3]);
    const same = await file("b.safetensors", [Number.NaN, 1, Infinity, 0, 3]);
    const nan = await file("c.safetensors", [1, 1, Infinity, 0, 3]);
    const inf = await file("d.safetensors", [Number.NaN, 1, -Infinity, 0, 2]);
    expect((await diffJson(base, same)).json.tensors).toEqual([
      { key: "x", maxAbs: 0, maxRel: 0, equal: true },
    ]);
    const withNaN = await diffJson(base, nan);
    expect(withNaN.code).toBe(1);
    expect(withNaN.json.tensors).toEqual([
      { key: "x", maxAbs: "nan", maxRel: "nan", equal: false },
    ]);
    // +inf against -inf: |a − b| is inf, and relative 2; 3 against 2: 1 and 1/3.
    expect((await diffJson(base, inf)).json.tensors).toEqual([
      { key: "x", maxAbs: "inf", maxRel: 2, equal: false },
    ]);
  });

  it("lines up tensors whose chunks are cut differently (float32 against bfloat16, 3M elements)", async () => {
    // loadout reads 8 MiB at a time: 2^21 float32 elements but 2^22 bfloat16 ones per chunk.
    const n = 3_000_000;
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (i % 7) - 3; // small integers: exact in bfloat16
    const planted = new Map([
      [2 ** 21 - 1, 1],
      [2 ** 21, -2],
      [n - 1, 0.5],
    ]);
    const b = new Float32Array(a);
    for (const [i, delta] of planted) b[i] = b[i]! + delta;
    // bfloat16 is the high half of float32; these values have nothing in the low half.
    const bits = new Uint32Array(b.buffer);
    const b16 = Uint16Array.from(bits, (x) => x >>> 16);
    const fileA = join(dir, "a.safetensors");
    const fileB = join(dir, "b.safetensors");
    await writeFile(fileA, buildSafetensors({ w: { dtype: "F32", shape: [n], data: a } }));
    await writeFile(fileB, buildSafetensors({ w: { dtype: "BF16", shape: [n], data: b16 } }));
    let maxAbs = 0;
    let maxRel = 0;
    for (const [i, delta] of planted) {
      const x = a[i]!;
      const y = x + delta;
      maxAbs = Math.max(maxAbs, Math.abs(delta));
      maxRel = Math.max(maxRel, Math.abs(delta) / Math.max(Math.abs(x), Math.abs(y)));
    }
    const { code, json } = await diffJson(fileA, fileB);
    expect(code).toBe(1);
    expect(json.dtypeMismatches).toEqual([{ key: "w", a: "float32", b: "bfloat16" }]);
    expect(json.tensors).toEqual([{ key: "w", maxAbs, maxRel, equal: false }]);
  });

  it("compares 64-bit integers exactly, beyond float64's 2^53", async () => {
    const path = (name: string, values: bigint[]) => {
      const file = join(dir, name);
      return writeFile(
        file,
        buildSafetensors({
          n: { dtype: "I64", shape: [values.length], data: BigInt64Array.from(values) },
        }),
      ).then(() => file);
    };
    const a = await path("a.safetensors", [2n ** 62n, -5n]);
    const b = await path("b.safetensors", [2n ** 62n + 1n, -5n]);
    const { code, json } = await diffJson(a, b);
    expect(code).toBe(1);
    expect(json.tensors).toEqual([{ key: "n", maxAbs: 1, maxRel: 1 / 2 ** 62, equal: false }]);
  });
});

describe("diff: human view and errors", () => {
  it("shows differing tensors largest difference first, then a summary", async () => {
    const result = await cli("diff", torchFile("net_state_dict.pt"), torchFile("net_fresh.pt"));
    expect(result.code).toBe(1);
    const lines = result.stdout.trimEnd().split("\n");
    const a = rawValues("net_state_dict.pt");
    const b = rawValues("net_fresh.pt");
    const order = ["conv.bias", "conv.weight", "fc.bias", "fc.weight", "head.bias", "head.weight"]
      .map((key) => ({
        key,
        max: Math.max(...a.get(key)!.map((x, i) => Math.abs(x - b.get(key)![i]!))),
      }))
      .sort((x, y) => y.max - x.max)
      .map(({ key }) => key);
    const header = lines.indexOf("Values differ, largest difference first (6):");
    expect(header).toBeGreaterThan(0);
    expect(lines[header + 1]).toMatch(/^ {2}key +max abs +max rel$/);
    expect(lines.slice(header + 2, header + 8).map((line) => line.trim().split(/\s+/)[0])).toEqual(
      order,
    );
    expect(lines.at(-1)).toBe(
      "Different: 7 of 13 tensors compared are equal exactly; 0 only in A, 0 only in B, 0 shape/dtype mismatch(es).",
    );
  });

  it("exits 2 on a file it cannot read, a file without a state dict, or a bad tolerance", async () => {
    const json = await cli("diff", torchFile("net_state_dict.pt"), torchFile("expected.json"));
    expect(json.code).toBe(2);
    const pickle = join(TORCH, "..", "pickle", "ints_p2.pkl");
    const noModel = await cli("diff", pickle, pickle);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toContain("--all");
    const tolerance = await cli(
      "diff",
      torchFile("net_state_dict.pt"),
      torchFile("net_fresh.pt"),
      "--atol",
      "-1",
    );
    expect(tolerance.code).toBe(2);
    expect(tolerance.stderr).toContain('--atol "-1" is not a non-negative number');
  });
});
