import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expected, torchFile } from "./fixture-records.js";
import { runCli } from "./run-cli.js";

const WIDTH: Record<string, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

interface InspectJson {
  format: string;
  tensors: { path: (string | number)[]; dtype: string; shape: number[]; bytes: number }[];
}

describe("loadout inspect --json", () => {
  it.each(Object.keys(expected))("lists what PyTorch loads from %s", async (name) => {
    const { code, stdout, stderr } = await runCli(["inspect", torchFile(name), "--json"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const report: InspectJson = JSON.parse(stdout);
    const want = expected[name]!;
    expect(report.format).toBe(want.format);
    const byPath = (t: { path: (string | number)[] }) => JSON.stringify(t.path);
    expect(report.tensors.map(byPath).sort()).toEqual(want.tensors.map(byPath).sort());
    for (const tensor of want.tensors) {
      const row = report.tensors.find((t) => byPath(t) === byPath(tensor))!;
      expect(row.dtype).toBe(tensor.dtype);
      expect(row.shape).toEqual(tensor.shape);
      expect(row.bytes).toBe(tensor.numel * WIDTH[tensor.dtype]!);
    }
  });
});

describe("loadout inspect, human view", () => {
  let folder: string;
  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), "loadout-inspect-"));
  });
  afterEach(async () => rm(folder, { recursive: true, force: true }));

  it("says what a file without tensors holds", async () => {
    // Python: pickle.dumps([1, 2], protocol=2)
    const path = join(folder, "numbers.pkl");
    await writeFile(
      path,
      Uint8Array.from([0x80, 2, 0x5d, 0x71, 0, 0x28, 0x4b, 1, 0x4b, 2, 0x65, 0x2e]),
    );
    const { code, stdout } = await runCli(["inspect", path]);
    expect(code).toBe(0);
    expect(stdout).toContain("Tensors: 0, 0 B\n  none; the file holds list(2): 1, 2\n");
  });

  it("counts one tensor in the singular and groups a state dict under its key", async () => {
    const { stdout } = await runCli(["inspect", torchFile("lightning.ckpt")]);
    expect(stdout).toMatch(/^ {2}state_dict {2}13 tensors, /m);
    // The checkpoint callback's record holds best_model_score, current_score and kth_value;
    // its long key is shortened the same way in both of its groups.
    const groups = stdout.split("\n").filter((line) => line.startsWith("  callbacks/"));
    expect(groups).toHaveLength(2);
    const key = groups[0]!.trim().split("  ")[0]!;
    expect(groups[1]!.trim().startsWith(`${key}/best_k_models  2 tensors`)).toBe(true);
    expect(stdout).toMatch(/^ {2}float32 {2}\d+ tensors/m);
    expect(stdout).toMatch(/^ {2}int64 +1 tensor +8 B$/m);
  });
});
