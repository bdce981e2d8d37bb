import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/formats/pickle/limits.js";
import { pyAttributes } from "../../src/formats/pickle/markers.js";
import type { GlobalHandler } from "../../src/formats/pickle/types.js";
import { unpickle } from "../../src/formats/pickle/unpickler.js";
import type { PyDict, PyObjectLike, PyValue } from "../../src/formats/pickle/values.js";
import { MiniPickler, type PyNode } from "./mini-pickler.js";

/**
 * A Lightning-shaped checkpoint of 20,000 parameters, laid out as torch.save writes it (protocol
 * 2, _rebuild_tensor_v2 over persistent storages, OrderedDict state dict with _metadata) plus
 * AdamW's two moments and step per parameter: 80,000 tensors. The default limits must open it
 * with room to spare.
 */

const PARAMETERS = 20_000;
const rebuild: PyNode = { global: ["torch._utils", "_rebuild_tensor_v2"] };
const floatStorage: PyNode = { global: ["torch", "FloatStorage"] };
const orderedDict: PyNode = { global: ["collections", "OrderedDict"] };
let storages = 0;

function tensor(shape: number[]): PyNode {
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const numel = shape.reduce((a, b) => a * b, 1);
  const pid: PyNode = { tuple: ["storage", floatStorage, String(storages++), "cpu", numel] };
  return {
    reduce: [
      rebuild,
      [
        { persid: pid },
        0,
        { tuple: shape },
        { tuple: strides },
        false,
        { reduce: [orderedDict, []] },
      ],
    ],
  };
}

function parameterName(i: number): string {
  return `model.layers.${Math.floor(i / 4)}.${["attn.q_proj", "attn.k_proj", "mlp.up", "norm"][i % 4]}.weight`;
}

function checkpoint(): PyNode {
  const stateDict: [PyNode, PyNode][] = [];
  const optimizerState: [PyNode, PyNode][] = [];
  const metadata: [PyNode, PyNode][] = [["", { dict: [["version", 1]] }]];
  for (let i = 0; i < PARAMETERS; i++) {
    const shape = i % 4 === 3 ? [64] : [64, 64];
    stateDict.push([parameterName(i), tensor(shape)]);
    optimizerState.push([
      i,
      {
        dict: [
          ["step", tensor([])],
          ["exp_avg", tensor(shape)],
          ["exp_avg_sq", tensor(shape)],
        ],
      },
    ]);
    if (i % 4 === 0) metadata.push([`model.layers.${i / 4}`, { dict: [["version", 1]] }]);
  }
  const paramGroup: PyNode = {
    dict: [
      ["lr", 0.001],
      ["betas", { tuple: [0.9, 0.999] }],
      ["weight_decay", 0.01],
      ["params", { list: Array.from({ length: PARAMETERS }, (_, i) => i) }],
    ],
  };
  return {
    dict: [
      ["epoch", 3],
      ["global_step", 1200],
      ["pytorch-lightning_version", "2.4.0"],
      [
        "state_dict",
        {
          reduce: [orderedDict, []],
          items: stateDict,
          state: { dict: [["_metadata", { reduce: [orderedDict, []], items: metadata }]] },
        },
      ],
      [
        "optimizer_states",
        {
          list: [
            {
              dict: [
                ["state", { dict: optimizerState }],
                ["param_groups", { list: [paramGroup] }],
              ],
            },
          ],
        },
      ],
      ["lr_schedulers", { list: [] }],
      [
        "hyper_parameters",
        {
          dict: [
            ["lr", 0.001],
            ["batch_size", 32],
          ],
        },
      ],
    ],
  };
}

interface FakeTensor extends PyObjectLike {
  storage: PyValue;
  shape: PyValue;
}

describe("a 20,000-parameter Lightning checkpoint (80,000 tensors)", () => {
  const pickler = new MiniPickler();
  const data = pickler.dump(checkpoint());

  it("fits the default limits with room to spare", () => {
    expect(pickler.memoEntries).toBeLessThan(DEFAULT_LIMITS.maxMemo / 4);
    expect(pickler.opcodes).toBeLessThan(DEFAULT_LIMITS.maxOperations / 4);
  });

  it("opens under the default limits, every tensor in place", () => {
    const handler: GlobalHandler = {
      call: (args) =>
        ({ pyClass: "torch.Tensor", storage: args[0]!, shape: args[2]! }) as FakeTensor,
    };
    const result = unpickle(data, {
      file: "last.ckpt",
      resolveGlobal: (module, name) =>
        module === "torch._utils" && name === "_rebuild_tensor_v2" ? handler : undefined,
      persistentLoad: {
        load: (pid) => ({ pyClass: "storage", key: (pid as PyValue[])[2] }) as PyObjectLike,
      },
    });
    expect(result.end).toBe(data.length);
    const root = result.value as PyDict;
    expect(root.get("global_step")).toBe(1200);

    const stateDict = root.get("state_dict") as PyDict;
    expect(stateDict.size).toBe(PARAMETERS);
    expect([...stateDict.keys()][5]).toBe(parameterName(5));
    const last = stateDict.get(parameterName(PARAMETERS - 1)) as FakeTensor;
    expect(last.shape).toEqual([64]);
    expect(last.storage).toMatchObject({ key: String(4 * (PARAMETERS - 1)) });
    const metadata = pyAttributes(stateDict)!.get("_metadata") as PyDict;
    expect(metadata.size).toBe(PARAMETERS / 4 + 1);

    const optimizer = (root.get("optimizer_states") as PyDict[])[0]!;
    const state = optimizer.get("state") as PyDict;
    expect(state.size).toBe(PARAMETERS);
    const moments = state.get(PARAMETERS - 1) as PyDict;
    expect((moments.get("step") as FakeTensor).shape).toEqual([]);
    expect((moments.get("exp_avg_sq") as FakeTensor).storage).toMatchObject({
      key: String(4 * (PARAMETERS - 1) + 3),
    });
    const group = (optimizer.get("param_groups") as PyDict[])[0]!;
    expect(group.get("lr")).toBe(0.001);
    expect((group.get("params") as number[]).length).toBe(PARAMETERS);
  });
});
