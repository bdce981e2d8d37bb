import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openCheckpointFile } from "../../src/node.js";
import { rawValues, torchFile } from "./fixture-records.js";
import { runCli } from "./run-cli.js";

/** A safetensors file's tensors as numbers (F32, BF16 and I64), parsed by the spec's layout. */
async function safetensorsValues(
  path: string,
): Promise<Map<string, { dtype: string; values: number[] }>> {
  const bytes = new Uint8Array(await readFile(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const out = new Map<string, { dtype: string; values: number[] }>();
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, data_offsets } = info as { dtype: string; data_offsets: [number, number] };
    const start = 8 + length + data_offsets[0];
    const size = { F32: 4, BF16: 2, I64: 8 }[dtype]!;
    const count = (data_offsets[1] - data_offsets[0]) / size;
    const values = Array.from({ length: count }, (_, i) => {
      const at = start + i * size;
      if (dtype === "I64") return Number(view.getBigInt64(at, true));
      if (dtype === "F32") return view.getFloat32(at, true);
      // bfloat16 is the high half of a float32.
      const widened = new DataView(new ArrayBuffer(4));
      widened.setUint32(0, view.getUint16(at, true) << 16, true);
      return widened.getFloat32(0, true);
    });
    out.set(name, { dtype, values });
  }
  return out;
}

const cli = (...args: string[]) => runCli(args);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "loadout-merge-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const seed0 = () => rawValues("net_state_dict.pt");
const seed1 = () => rawValues("net_fresh.pt");

describe("merge: override", () => {
  it("takes the union of keys, a later file's tensor replacing an earlier one's", async () => {
    const heads = join(dir, "heads.safetensors");
    expect((await cli("convert", torchFile("net_fresh.pt"), heads, "--include", "head")).code).toBe(
      0,
    );
    const out = join(dir, "merged.safetensors");
    const result = await cli("merge", torchFile("net_state_dict.pt"), heads, "--out", out);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^merged 2 checkpoints \(override, later files win\): 13 tensors, /,
    );
    const merged = await safetensorsValues(out);
    const [a, b] = [seed0(), seed1()];
    expect([...merged.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [key, values] of a) {
      const want = key.startsWith("head.") ? b.get(key)! : values;
      expect(merged.get(key)!.values, key).toEqual(want);
    }
  });
});

describe("merge --average", () => {
  it("averages with the given weights, normalised (1,3 → 0.25, 0.75), rounding once to float32", async () => {
    const out = join(dir, "avg.safetensors");
    const result = await cli(
      "merge",
      torchFile("net_state_dict.pt"),
      torchFile("net_fresh.pt"),
      "--out",
      out,
      "--average",
      "--weights",
      "1,3",
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("average with weights 1, 3");
    const merged = await safetensorsValues(out);
    const [a, b] = [seed0(), seed1()];
    for (const [key, x] of a) {
      const y = b.get(key)!;
      const got = merged.get(key)!;
      if (key === "bn.num_batches_tracked") {
        // Integers are kept when every file agrees (both 0 here), never averaged.
        expect(got).toEqual({ dtype: "I64", values: [0] });
        continue;
      }
      expect(got.dtype).toBe("F32");
      expect(got.values, key).toEqual(x.map((v, i) => Math.fround(0.25 * v + 0.75 * y[i]!)));
    }
  });

  it("averages three files into a PyTorch zip (weights 0.5,0.3,0.2; default equal weights)", async () => {
    const files = ["net_state_dict.pt", "net_fresh.pt", "net_legacy.pt"];
    const inputs = files.map((f) => rawValues(f));
    for (const [weights, name] of [
      [[0.5, 0.3, 0.2], "weighted.pt"],
      [undefined, "equal.pt"],
    ] as const) {
      const out = join(dir, name);
      const args = ["merge", ...files.map(torchFile), "--out", out, "--average"];
      if (weights) args.push("--weights", weights.join(","));
      expect((await cli(...args)).code).toBe(0);
      const raw = weights ?? [1, 1, 1];
      const total = raw.reduce((s, w) => s + w, 0);
      const w = raw.map((v) => v / total);
      const checkpoint = await openCheckpointFile(out);
      try {
        for (const [key, tensor] of checkpoint.stateDict()!.tensors) {
          const got = [...(await tensor.read({ dtype: "float64" }))] as number[];
          if (key === "bn.num_batches_tracked") {
            expect(got).toEqual([0]);
            continue;
          }
          const want = inputs[0]!.get(key)!.map((_, i) => {
            let sum = w[0]! * inputs[0]!.get(key)![i]!;
            sum += w[1]! * inputs[1]!.get(key)![i]!;
            sum += w[2]! * inputs[2]!.get(key)![i]!;
            return Math.fround(sum);
          });
          expect(got, `${name} ${key}`).toEqual(want);
        }
      } finally {
        await checkpoint.close();
      }
    }
  });

  it("writes floating tensors as --dtype bfloat16, within bfloat16's rounding of the float32 average", async () => {
    const out = join(dir, "avg16.safetensors");
    expect(
      (
        await cli(
          "merge",
          torchFile("net_state_dict.pt"),
          torchFile("net_fresh.pt"),
          "--out",
          out,
          "--average",
          "--dtype",
          "bfloat16",
        )
      ).code,
    ).toBe(0);
    const merged = await safetensorsValues(out);
    const [a, b] = [seed0(), seed1()];
    expect(merged.get("bn.num_batches_tracked")!.dtype).toBe("I64");
    for (const [key, x] of a) {
      if (key === "bn.num_batches_tracked") continue;
      const got = merged.get(key)!;
      expect(got.dtype).toBe("BF16");
      // bfloat16 keeps 8 significant bits: rounding to nearest moves a value by at most 2^-8
      // of it (plus float32's own, far smaller, rounding first).
      got.values.forEach((v, i) => {
        const exact = 0.5 * x[i]! + 0.5 * b.get(key)![i]!;
        expect(Math.abs(v - exact)).toBeLessThanOrEqual(Math.abs(exact) * 2 ** -8 * 1.001);
      });
    }
  });
});

describe("merge: refusals", () => {
  it("names the key and the files when shapes conflict", async () => {
    const out = join(dir, "m.pt");
    const result = await cli(
      "merge",
      torchFile("net_fresh.pt"),
      torchFile("net_wide_fresh.pt"),
      "--out",
      out,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("key 'head.weight'");
    expect(result.stderr).toContain("float32 [10, 16]");
    expect(result.stderr).toContain("float32 [12, 16]");
    expect(result.stderr).toContain(`1 = ${torchFile("net_wide_fresh.pt")}`);
    expect(await readdir(dir)).toEqual([]);
  });

  it("names the key when dtypes conflict", async () => {
    const half = join(dir, "half.safetensors");
    expect(
      (await cli("convert", torchFile("net_state_dict.pt"), half, "--dtype", "bfloat16")).code,
    ).toBe(0);
    const result = await cli(
      "merge",
      torchFile("net_state_dict.pt"),
      half,
      "--out",
      join(dir, "m.safetensors"),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/float32 \[.*\] but state dict 1 has bfloat16/);
    // The first conflicting key in the second file's order (safetensors sorts by name).
    expect(result.stderr).toContain("key 'bn.bias'");
  });

  it("refuses weights that are malformed, miscounted or given without --average", async () => {
    const inputs = [torchFile("net_state_dict.pt"), torchFile("net_fresh.pt")];
    const out = join(dir, "m.safetensors");
    const cases: [string[], string][] = [
      [["--average", "--weights", "0.5"], "--weights gives 1 weight(s) for 2 checkpoints"],
      [["--average", "--weights", "0.5,0.3,0.2"], "--weights gives 3 weight(s) for 2 checkpoints"],
      [["--average", "--weights", "0.5,"], '--weights "" is not a non-negative number'],
      [["--average", "--weights", "1,-1"], '--weights "-1" is not a non-negative number'],
      [["--average", "--weights", "1,x"], '--weights "x" is not a non-negative number'],
      [["--average", "--weights", "0,0"], "sum to zero"],
      [["--weights", "1,1"], "--weights applies to --average only"],
    ];
    for (const [options, message] of cases) {
      const result = await cli("merge", ...inputs, "--out", out, ...options);
      expect(result.code, options.join(" ")).toBe(2);
      expect(result.stderr).toContain(message);
    }
    const single = await cli("merge", inputs[0]!, "--out", out);
    expect(single.code).toBe(2);
    expect(single.stderr).toContain("merge needs at least two checkpoints");
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses to average files with different keys", async () => {
    const heads = join(dir, "heads.safetensors");
    expect((await cli("convert", torchFile("net_fresh.pt"), heads, "--include", "head")).code).toBe(
      0,
    );
    const result = await cli(
      "merge",
      torchFile("net_state_dict.pt"),
      heads,
      "--out",
      join(dir, "m.pt"),
      "--average",
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("cannot average state dicts that hold different keys");
  });

  it("leaves no output when averaging fails part-way (integers that differ)", async () => {
    // lightning.ckpt's trained BatchNorm counted 6 batches; the fresh net counted 0.
    const trained = join(dir, "trained.safetensors");
    expect(
      (await cli("convert", torchFile("lightning.ckpt"), trained, "--strip-prefix", "model.")).code,
    ).toBe(0);
    const out = join(dir, "m.pt");
    const result = await cli(
      "merge",
      torchFile("net_state_dict.pt"),
      trained,
      "--out",
      out,
      "--average",
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("cannot average int64 tensors");
    expect(result.stderr).toContain("key 'bn.num_batches_tracked'");
    expect(await readdir(dir)).toEqual(["trained.safetensors"]);
  });
});
