/**
 * `loadout load`, run in-process through the real CLI entry point on the PyTorch-made fixtures.
 * The --out file is read back by hand, by the safetensors format's rules (8-byte little-endian
 * header size, JSON header, data offsets that tile the data section exactly), and its tensors
 * compared with torch's values of what was loaded (test/fixtures/strategies/values.json).
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openCheckpointFile } from "../../src/node.js";
import { runCli } from "./run-cli.js";

const FIXTURES = join(import.meta.dirname, "../fixtures");
const file = (name: string) => join(FIXTURES, "torch", name);

const VALUES = JSON.parse(readFileSync(join(FIXTURES, "strategies/values.json"), "utf8")) as {
  files: Record<string, { tensors: Record<string, { values: number[] }> }>;
};
const torchValues = (name: string, key: string) => VALUES.files[name]!.tensors[key]!.values;
const EXPECTED = JSON.parse(readFileSync(file("expected.json"), "utf8")).files as Record<
  string,
  {
    trainingState?: { epoch: number; global_step: number; best_model_score: number };
    optimizer?: { paramGroups: Record<string, unknown>[] };
    lrSchedulers?: Record<string, unknown>[];
  }
>;
const NET_KEYS = Object.keys(VALUES.files["torch/net_state_dict.pt"]!.tensors);

const SIZES: Record<string, number> = { F32: 4, I64: 8 };

interface Safetensors {
  metadata: Record<string, string>;
  /** In the header's order. */
  tensors: Map<string, { dtype: string; shape: number[]; values: number[] }>;
}

/** Reads a safetensors file by the format's rules, failing on any breach. */
function readSafetensors(bytes: Uint8Array): Safetensors {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerSize = Number(view.getBigUint64(0, true));
  expect(8 + headerSize).toBeLessThanOrEqual(bytes.byteLength);
  const headerText = new TextDecoder("utf-8", { fatal: true }).decode(
    bytes.subarray(8, 8 + headerSize),
  );
  expect(headerText.startsWith("{")).toBe(true);
  const header = JSON.parse(headerText) as Record<string, unknown>;
  const dataStart = 8 + headerSize;
  const dataLength = bytes.byteLength - dataStart;
  const { __metadata__: metadata = {}, ...entries } = header as Record<string, never>;
  for (const value of Object.values(metadata)) expect(typeof value).toBe("string");

  const tensors: Safetensors["tensors"] = new Map();
  const ranges: [number, number][] = [];
  for (const [name, entry] of Object.entries(
    entries as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>,
  )) {
    const [begin, end] = entry.data_offsets;
    const size = SIZES[entry.dtype]!;
    const numel = entry.shape.reduce((a, b) => a * b, 1);
    expect(end - begin, name).toBe(numel * size);
    ranges.push([begin, end]);
    const values: number[] = [];
    for (let i = 0; i < numel; i++) {
      const at = dataStart + begin + i * size;
      values.push(
        entry.dtype === "F32" ? view.getFloat32(at, true) : Number(view.getBigInt64(at, true)),
      );
    }
    tensors.set(name, { dtype: entry.dtype, shape: entry.shape, values });
  }
  // The offsets tile the data section: sorted, no gap, no overlap, nothing after the last.
  ranges.sort((a, b) => a[0] - b[0]);
  let reach = 0;
  for (const [begin, end] of ranges) {
    expect(begin).toBe(reach);
    reach = end;
  }
  expect(reach).toBe(dataLength);
  return { metadata, tensors };
}

const set = (key: string, value: string) => ["--set", `checkpoint.loading.${key}=${value}`];

let dir: string;
const out = () => join(dir, "model.safetensors");
const stateOut = () => join(dir, "state.json");
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "loadout-load-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function loadCli(source: string, target: string, ...extra: string[]) {
  return runCli([
    "load",
    "--source",
    source,
    "--target",
    target,
    "--out",
    out(),
    "--state-out",
    stateOut(),
    ...extra,
  ]);
}

describe("loadout load", () => {
  it("weights_only: writes every loaded tensor as valid safetensors, and the state record", async () => {
    const { code, stdout, stderr } = await loadCli(file("net_state_dict.pt"), file("net_fresh.pt"));
    expect([code, stderr]).toEqual([0, ""]);
    expect(stdout).toMatch(/^weights_only: loaded 13 of 13 parameters \(/);
    expect(stdout).toContain(`; wrote ${out()} and ${stateOut()}`);

    const written = readSafetensors(await readFile(out()));
    expect(written.metadata).toEqual({
      format: "pt",
      loadout_strategy: "weights_only",
      loadout_source: file("net_state_dict.pt"),
    });
    expect([...written.tensors.keys()]).toEqual(NET_KEYS);
    for (const key of NET_KEYS) {
      const tensor = written.tensors.get(key)!;
      expect(tensor.dtype).toBe(key.endsWith("num_batches_tracked") ? "I64" : "F32");
      expect(tensor.values, key).toEqual(torchValues("torch/net_state_dict.pt", key));
    }
    // loadout's own reader accepts it too.
    const reopened = await openCheckpointFile(out());
    try {
      expect(reopened.format).toBe("safetensors");
      expect([...reopened.stateDict()!.tensors.keys()]).toEqual(NET_KEYS);
    } finally {
      await reopened.close();
    }

    expect(JSON.parse(await readFile(stateOut(), "utf8"))).toEqual({
      strategy: "weights_only",
      source: file("net_state_dict.pt"),
      trainingState: { epoch: 0, globalStep: 0, bestMetric: null, metricsHistory: [] },
      optimizer: null,
      scheduler: null,
    });
  });

  it("warm_start from Lightning: the trained weights, and training state, optimizer and scheduler recorded", async () => {
    const { code } = await loadCli(
      file("lightning.ckpt"),
      file("net_fresh.pt"),
      ...set("type", "warm_start"),
    );
    expect(code).toBe(0);
    const written = readSafetensors(await readFile(out()));
    for (const key of NET_KEYS) {
      expect(written.tensors.get(key)!.values, key).toEqual(
        torchValues("torch/lightning.ckpt", `model.${key}`),
      );
    }
    const saved = EXPECTED["lightning.ckpt"]!;
    const { params, param_names, ...hyper } = saved.optimizer!.paramGroups[0]!;
    expect(JSON.parse(await readFile(stateOut(), "utf8"))).toEqual({
      strategy: "warm_start",
      source: file("lightning.ckpt"),
      trainingState: {
        epoch: saved.trainingState!.epoch,
        globalStep: saved.trainingState!.global_step,
        bestMetric: saved.trainingState!.best_model_score,
        metricsHistory: [],
      },
      optimizer: {
        action: "restore",
        type: "Adam-like",
        mapping: "param_names",
        groups: [{ params: (param_names as string[]).map((n) => n.slice(6)), hyper }],
        parametersWithState: (params as number[]).length,
      },
      scheduler: { action: "restore", state: saved.lrSchedulers![0] },
    });
  });

  it("transfer_learning with overlap into a wider head: old rows loaded, new rows as initialised", async () => {
    const { code } = await loadCli(
      file("net_state_dict.pt"),
      file("net_wide_fresh.pt"),
      ...set("type", "transfer_learning"),
      ...set("mismatch", "overlap"),
    );
    expect(code).toBe(0);
    const head = readSafetensors(await readFile(out())).tensors.get("head.weight")!;
    expect(head.shape).toEqual([12, 16]);
    expect(head.values.slice(0, 160)).toEqual(
      torchValues("torch/net_state_dict.pt", "head.weight"),
    );
    expect(head.values.slice(160)).toEqual(
      torchValues("torch/net_wide_fresh.pt", "head.weight").slice(160),
    );
  });

  it("--mode in_place writes the same bytes as the default transactional mode", async () => {
    const args = [file("lightning.ckpt"), file("net_fresh.pt"), ...set("type", "warm_start")];
    expect((await loadCli(args[0]!, args[1]!, ...args.slice(2))).code).toBe(0);
    const transactional = [await readFile(out()), await readFile(stateOut())];
    expect((await loadCli(args[0]!, args[1]!, ...args.slice(2), "--mode", "in_place")).code).toBe(
      0,
    );
    expect([await readFile(out()), await readFile(stateOut())]).toEqual(transactional);
  });

  describe("on failure", () => {
    const OLD_OUT = "not a model, but the user's file";
    const OLD_STATE = '{"mine": true}\n';

    async function expectOutputsUntouched(existed: boolean): Promise<void> {
      expect((await readdir(dir)).sort()).toEqual(
        existed ? ["model.safetensors", "state.json"] : [],
      );
      if (existed) {
        expect(await readFile(out(), "utf8")).toBe(OLD_OUT);
        expect(await readFile(stateOut(), "utf8")).toBe(OLD_STATE);
      }
    }

    for (const existed of [true, false]) {
      it(`a plan with violations exits 1, says why, and ${existed ? "changes no file" : "creates no file"}`, async () => {
        if (existed) {
          await writeFile(out(), OLD_OUT);
          await writeFile(stateOut(), OLD_STATE);
        }
        const { code, stdout, stderr } = await loadCli(
          file("net_state_dict.pt"),
          file("net_wide_fresh.pt"),
        );
        expect(code).toBe(1);
        expect(stdout).toBe("");
        expect(stderr).toContain("weights_only cannot load");
        expect(stderr).toContain(
          "shape mismatch for 'head.weight': checkpoint [10, 16] vs model [12, 16]",
        );
        expect(stderr).toContain("Nothing was changed");
        await expectOutputsUntouched(existed);
      });
    }

    it("warm_start from a file with no training state to resume: exit 1, no file changed", async () => {
      await writeFile(out(), OLD_OUT);
      await writeFile(stateOut(), OLD_STATE);
      const { code, stderr } = await loadCli(
        file("net_state_dict.pt"),
        file("net_fresh.pt"),
        ...set("type", "warm_start"),
      );
      expect(code).toBe(1);
      expect(stderr).toContain("records no training state");
      await expectOutputsUntouched(true);
    });

    it("an unwritable --state-out fails before loading and leaves --out untouched", async () => {
      await writeFile(out(), OLD_OUT);
      const { code, stderr } = await runCli([
        "load",
        "--source",
        file("net_state_dict.pt"),
        "--target",
        file("net_fresh.pt"),
        "--out",
        out(),
        "--state-out",
        join(dir, "missing-folder", "state.json"),
      ]);
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/^loadout: /);
      expect((await readdir(dir)).sort()).toEqual(["model.safetensors"]);
      expect(await readFile(out(), "utf8")).toBe(OLD_OUT);
    });

    it("a bad --mode is a usage error (exit 2) and writes nothing", async () => {
      const { code, stderr } = await loadCli(
        file("net_state_dict.pt"),
        file("net_fresh.pt"),
        "--mode",
        "fast",
      );
      expect(code).toBe(2);
      expect(stderr).toContain("fast");
      await expectOutputsUntouched(false);
    });
  });
});
