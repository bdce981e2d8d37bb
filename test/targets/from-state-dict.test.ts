import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openCheckpointFile } from "../../src/node.js";
import { modelFromStateDict } from "../../src/targets/from-state-dict.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import { tensorOf } from "../state/helpers.js";

describe("modelFromStateDict", () => {
  // What BatchNorm2d(2) + Linear(2 -> 1) in float16 gives as a state dict.
  const stateDict = () =>
    new Map<string, Tensor>([
      ["bn.weight", tensorOf([1, 1])],
      ["bn.bias", tensorOf([0, 0])],
      ["bn.running_mean", tensorOf([0.25, -0.5])],
      ["bn.running_var", tensorOf([1, 2])],
      ["bn.num_batches_tracked", tensorOf([12n], [], "int64")],
      ["fc.weight", tensorOf([0x3c00, 0xc000], [1, 2], "float16")],
      ["fc.bias", tensorOf([0x3800], [1], "float16")],
      ["mask", tensorOf([1, 0], [2], "bool")],
    ]);

  it("keeps every tensor's dtype, shape and value, in order", async () => {
    const m = await modelFromStateDict(stateDict());
    expect(m.parameters().map((p) => [p.name, p.dtype, [...p.shape]])).toEqual([
      ["bn.weight", "float32", [2]],
      ["bn.bias", "float32", [2]],
      ["bn.running_mean", "float32", [2]],
      ["bn.running_var", "float32", [2]],
      ["bn.num_batches_tracked", "int64", []],
      ["fc.weight", "float16", [1, 2]],
      ["fc.bias", "float16", [1]],
      ["mask", "bool", [2]],
    ]);
    expect([...(await m.read("bn.running_mean"))]).toEqual([0.25, -0.5]);
    expect(await m.read("bn.num_batches_tracked")).toEqual(BigInt64Array.from([12n]));
    // float16 stays as its raw bits: 1.0 = 0x3c00, -2.0 = 0xc000.
    expect(await m.read("fc.weight")).toEqual(Uint16Array.from([0x3c00, 0xc000]));
    expect(await m.read("mask")).toEqual(Uint8Array.from([1, 0]));
  });

  it("marks running statistics and non-float tensors as non-trainable buffers", async () => {
    const m = await modelFromStateDict(stateDict());
    const kinds = Object.fromEntries(
      m.parameters().map((p) => [p.name, `${p.kind}/${p.trainable}`]),
    );
    expect(kinds).toEqual({
      "bn.weight": "parameter/true",
      "bn.bias": "parameter/true",
      "bn.running_mean": "buffer/false",
      "bn.running_var": "buffer/false",
      "bn.num_batches_tracked": "buffer/false",
      "fc.weight": "parameter/true",
      "fc.bias": "parameter/true",
      mask: "buffer/false",
    });
  });

  it("takes the parameters by name when they are known", async () => {
    const m = await modelFromStateDict(stateDict(), {
      parameterNames: new Set(["fc.weight", "fc.bias"]),
    });
    expect(
      m
        .parameters()
        .filter((p) => p.kind === "parameter")
        .map((p) => p.name),
    ).toEqual(["fc.weight", "fc.bias"]);
  });

  it("a name that merely ends like a buffer is not one", async () => {
    const m = await modelFromStateDict(new Map([["my_running_mean", tensorOf([1])]]));
    expect(m.parameters()[0]!.kind).toBe("parameter");
  });
});

describe("modelFromStateDict on a PyTorch-made state dict", () => {
  it("reads net_state_dict.pt as torch did, buffers marked", async () => {
    const file = join(import.meta.dirname, "../fixtures/torch");
    const expected = JSON.parse(readFileSync(join(file, "expected.json"), "utf8")).files[
      "net_state_dict.pt"
    ] as {
      tensors: { path: string[]; dtype: string; shape: number[]; sum: number; first: number[] }[];
    };
    const ckpt = await openCheckpointFile(join(file, "net_state_dict.pt"));
    try {
      const model = await modelFromStateDict(ckpt.stateDict()!.tensors);
      const infos = model.parameters();
      expect(infos.map((p) => [p.name, p.dtype, [...p.shape]])).toEqual(
        expected.tensors.map((t) => [t.path[0], t.dtype, t.shape]),
      );
      expect(infos.filter((p) => p.kind === "buffer").map((p) => p.name)).toEqual([
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
      ]);
      for (const t of expected.tensors) {
        const value = await model.read(t.path[0]!);
        const numbers = Array.from(value as ArrayLike<number | bigint>, Number);
        expect(numbers.slice(0, 8)).toEqual(t.first);
        expect(numbers.reduce((a, b) => a + b, 0)).toBeCloseTo(t.sum, 12);
      }
    } finally {
      await ckpt.close();
    }
  });
});
