import { describe, expect, it } from "vitest";
import { FormatError, LoadError, LoadoutError } from "../../src/errors.js";
import type { PyValue } from "../../src/formats/pickle/values.js";
import {
  describeOptimizer,
  findOptimizerStates,
  mapOptimizerToNames,
  type OptimizerMappingOptions,
  parseTorchOptimizerState,
  summarizeOptimizer,
  toOptimizerState,
} from "../../src/state/torch-optimizer.js";
import { MemoryModel, MemoryOptimizer } from "../../src/targets/memory.js";
import type { ParameterInfo } from "../../src/targets/types.js";
import { numelOf } from "../../src/tensors/shape.js";
import { dict, ramp, scalarTensor, sum, tensorOf, tuple } from "./helpers.js";

/**
 * The optimizer state PyTorch 2.13 writes for `nn.Sequential(Linear(2, 3), BatchNorm1d(3),
 * Linear(3, 1))` held by a LightningModule as `self.model`, after AdamW steps:
 * `{"state": {i: {"step": tensor(3.), "exp_avg": ..., "exp_avg_sq": ...}}, "param_groups": [{
 * "param_names": [...], "lr": ..., "betas": (0.9, 0.999), ..., "params": [0..5]}]}`.
 * The values are made up (a ramp per tensor) so the test can compute what must come out.
 */
const PARAMS: [string, number[]][] = [
  ["0.weight", [3, 2]],
  ["0.bias", [3]],
  ["1.weight", [3]],
  ["1.bias", [3]],
  ["2.weight", [1, 3]],
  ["2.bias", [1]],
];
const BUFFERS: [string, number[]][] = [
  ["1.running_mean", [3]],
  ["1.running_var", [3]],
  ["1.num_batches_tracked", []],
];
/** Lightning's state_dict order: each module's parameters, then its buffers. */
const SOURCE_KEYS = [
  "model.0.weight",
  "model.0.bias",
  "model.1.weight",
  "model.1.bias",
  "model.1.running_mean",
  "model.1.running_var",
  "model.1.num_batches_tracked",
  "model.2.weight",
  "model.2.bias",
];

const expAvg = (i: number, n: number) => ramp(n, 0.5, i);
const expAvgSq = (i: number, n: number) => ramp(n, 0.25, 10 * i);

function adamState(
  options: { names?: "prefixed" | "bare" | "none"; order?: number[] } = {},
): Map<PyValue, PyValue> {
  const names = options.names ?? "prefixed";
  const order = options.order ?? PARAMS.map((_, i) => i);
  const state = dict(
    order.map((param, position) => {
      const shape = PARAMS[param]![1];
      const n = numelOf(shape);
      return [
        position,
        dict([
          ["step", scalarTensor(3)],
          ["exp_avg", tensorOf(expAvg(param, n), shape)],
          ["exp_avg_sq", tensorOf(expAvgSq(param, n), shape)],
        ]),
      ];
    }),
  );
  const group: [PyValue, PyValue][] = [];
  if (names !== "none") {
    group.push([
      "param_names",
      order.map((p) => (names === "prefixed" ? "model." : "") + PARAMS[p]![0]),
    ]);
  }
  group.push(
    ["lr", 0.001],
    ["betas", tuple(0.9, 0.999)],
    ["eps", 1e-8],
    ["weight_decay", 0.01],
    ["amsgrad", false],
    ["foreach", null],
    ["decoupled_weight_decay", true],
    ["initial_lr", 0.001],
    ["params", order.map((_, position) => position)],
  );
  return dict([
    ["state", state],
    ["param_groups", [dict(group)]],
  ]);
}

function targetModel(overrides: Record<string, number[]> = {}): MemoryModel {
  return new MemoryModel([
    ...PARAMS.map(([name, shape]) => ({
      name,
      shape: overrides[name] ?? shape,
      dtype: "float32" as const,
    })),
    ...BUFFERS.map(([name, shape]) => ({
      name,
      shape,
      dtype: name.endsWith("tracked") ? ("int64" as const) : ("float32" as const),
      kind: "buffer" as const,
    })),
  ]);
}

/** The model key match for the Lightning source: `model.` stripped when the target has the key. */
function lightningToTarget(targetParams: readonly ParameterInfo[]) {
  const names = new Set(targetParams.map((p) => p.name));
  return (key: string) => {
    const bare = key.startsWith("model.") && SOURCE_KEYS.includes(key) ? key.slice(6) : undefined;
    return bare !== undefined && names.has(bare) ? bare : undefined;
  };
}

function options(
  model = targetModel(),
  extra: Partial<OptimizerMappingOptions> = {},
): OptimizerMappingOptions {
  const targetParams = model.parameters();
  return {
    sourceParamOrder: SOURCE_KEYS,
    toTarget: lightningToTarget(targetParams),
    targetParams,
    ...extra,
  };
}

async function refusal(run: () => unknown, code: string): Promise<LoadoutError> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(LoadoutError);
  expect((error as LoadoutError).code).toBe(code);
  return error as LoadoutError;
}

describe("findOptimizerStates", () => {
  it("finds Lightning's optimizer_states list", () => {
    const a = adamState();
    const b = adamState();
    const found = findOptimizerStates(
      dict([
        ["state_dict", dict([])],
        ["optimizer_states", [a, b]],
      ]),
    );
    expect(found.map(({ path, origin }) => ({ path, origin }))).toEqual([
      { path: ["optimizer_states", 0], origin: "lightning" },
      { path: ["optimizer_states", 1], origin: "lightning" },
    ]);
    expect(found[1]!.value).toBe(b);
  });

  it("finds the plain keys, ignoring values that are not dicts", () => {
    const found = findOptimizerStates(
      dict([
        ["optimizer_state_dict", adamState()],
        ["optimizer", "adamw"],
      ]),
    );
    expect(found.map(({ path, origin }) => ({ path, origin }))).toEqual([
      { path: ["optimizer_state_dict"], origin: "plain" },
    ]);
  });

  it("finds loadout's layout with its param_order", () => {
    const root = dict([
      ["optimizer", adamState({ names: "none" })],
      [
        "loadout",
        dict([
          ["format_version", 1],
          ["writer", "loadout 0.1.0"],
          ["param_order", ["a", "b"]],
        ]),
      ],
    ]);
    expect(findOptimizerStates(root)).toMatchObject([
      { path: ["optimizer"], origin: "loadout", paramOrder: ["a", "b"] },
    ]);
  });

  it("finds a bare optimizer state dict file", () => {
    expect(findOptimizerStates(adamState())).toMatchObject([{ path: [], origin: "plain" }]);
    expect(findOptimizerStates([adamState()])).toEqual([]);
  });
});

describe("parseTorchOptimizerState", () => {
  it("reads groups, hyperparameters and per-parameter state without reading tensors", () => {
    const parsed = parseTorchOptimizerState(adamState(), ["optimizer_states", 0]);
    expect(parsed.groups).toHaveLength(1);
    const [group] = parsed.groups;
    expect(group!.indices).toEqual([0, 1, 2, 3, 4, 5]);
    expect(group!.paramNames).toEqual(PARAMS.map(([name]) => `model.${name}`));
    expect(group!.hyper).toEqual({
      lr: 0.001,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weight_decay: 0.01,
      amsgrad: false,
      foreach: null,
      decoupled_weight_decay: true,
      initial_lr: 0.001,
    });
    expect([...parsed.state.keys()]).toEqual([0, 1, 2, 3, 4, 5]);
    const first = parsed.state.get(0)!;
    expect(Object.keys(first.scalars)).toEqual(["step"]);
    expect([...first.tensors.keys()]).toEqual(["exp_avg", "exp_avg_sq"]);
    expect(first.tensors.get("exp_avg")!.shape).toEqual([3, 2]);
  });

  it("takes a Python number step (PyTorch < 1.12) and skips SGD's None momentum_buffer", () => {
    const parsed = parseTorchOptimizerState(
      dict([
        [
          "state",
          dict([
            [
              0,
              dict([
                ["step", 12],
                ["momentum_buffer", null],
              ]),
            ],
          ]),
        ],
        [
          "param_groups",
          [
            dict([
              ["lr", 0.1],
              ["params", [0]],
            ]),
          ],
        ],
      ]),
      [],
    );
    expect(parsed.state.get(0)!.scalars).toEqual({ step: 12 });
    expect(parsed.state.get(0)!.tensors.size).toBe(0);
  });

  it("treats 0-d tensors as scalars except per-element slots of 0-d parameters", () => {
    const parsed = parseTorchOptimizerState(
      dict([
        [
          "state",
          dict([
            [
              0,
              dict([
                ["step", scalarTensor(1)],
                ["mu_product", scalarTensor(0.9)],
                ["exp_avg", scalarTensor(0.5)],
              ]),
            ],
          ]),
        ],
        ["param_groups", [dict([["params", [0]]])]],
      ]),
      [],
    );
    const entry = parsed.state.get(0)!;
    expect(Object.keys(entry.scalars)).toEqual(["step", "mu_product"]);
    expect([...entry.tensors.keys()]).toEqual(["exp_avg"]);
  });

  type Dict = Map<PyValue, PyValue>;
  const stateOf = (s: Dict) => s.get("state") as Dict;
  /** Each breaks a fresh state in place, or returns a replacement. */
  const broken: [string, (s: Dict) => PyValue | undefined, string][] = [
    ["not a dict", () => [1, 2], "optimizer_states/0"],
    ["an unknown top-level entry", (s) => s.set("extra", 1), "optimizer_states/0"],
    [
      "param_groups missing",
      (s) => void s.delete("param_groups"),
      "optimizer_states/0/param_groups",
    ],
    [
      "params that are not positions",
      (s) => void groupOf(s).set("params", [0, -1]),
      "optimizer_states/0/param_groups/0/params",
    ],
    [
      "a position in two groups",
      (s) => s.set("param_groups", [groupOf(s), dict([["params", [5]]])]),
      "optimizer_states/0/param_groups/1/params",
    ],
    [
      "param_names of the wrong length",
      (s) => void groupOf(s).set("param_names", ["a"]),
      "optimizer_states/0/param_groups/0/param_names",
    ],
    [
      "a dict hyperparameter",
      (s) => void groupOf(s).set("lr", dict([])),
      "optimizer_states/0/param_groups/0/lr",
    ],
    [
      "state for an unlisted position",
      (s) => void stateOf(s).set(9, dict([])),
      "optimizer_states/0/state/9",
    ],
    [
      "a string state entry",
      (s) => void (stateOf(s).get(1) as Dict).set("exp_avg", "x"),
      "optimizer_states/0/state/1/exp_avg",
    ],
    ["state that is a list", (s) => s.set("state", []), "optimizer_states/0/state"],
  ];
  const groupOf = (s: Map<PyValue, PyValue>) =>
    (s.get("param_groups") as Map<PyValue, PyValue>[])[0]!;

  for (const [what, breakIt, key] of broken) {
    it(`refuses ${what}, naming where`, () => {
      let error: unknown;
      try {
        const state = adamState();
        parseTorchOptimizerState(breakIt(state) ?? state, ["optimizer_states", 0]);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FormatError);
      expect((error as FormatError).key).toBe(key);
    });
  }
});

describe("describeOptimizer", () => {
  const withSlots = (...slots: string[]) =>
    parseTorchOptimizerState(
      dict([
        ["state", dict([[0, dict(slots.map((s) => [s, tensorOf([1, 2])]))]])],
        [
          "param_groups",
          [
            dict([
              ["params", [0, 1]],
              ["lr", scalarTensor(0.5)],
            ]),
          ],
        ],
      ]),
      [],
    );

  it("guesses the optimizer from its per-parameter slots", () => {
    expect(describeOptimizer(withSlots("exp_avg", "exp_avg_sq"))).toBe("Adam-like");
    expect(describeOptimizer(withSlots("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))).toBe(
      "Adam-like",
    );
    expect(describeOptimizer(withSlots("momentum_buffer"))).toBe("SGD");
    expect(describeOptimizer(withSlots("square_avg"))).toBe("RMSprop");
    expect(describeOptimizer(withSlots("square_avg", "acc_delta"))).toBe("Adadelta");
    expect(describeOptimizer(withSlots("sum"))).toBe("Adagrad");
    expect(describeOptimizer(withSlots())).toBeNull();
  });

  it("counts groups, parameters and stateful parameters", () => {
    const d = summarizeOptimizer(parseTorchOptimizerState(adamState(), []));
    expect(d).toMatchObject({
      groups: 1,
      parameters: 6,
      withState: 6,
      slots: ["step", "exp_avg", "exp_avg_sq"],
      paramNames: true,
    });
    expect(summarizeOptimizer(withSlots("sum"))).toMatchObject({
      parameters: 2,
      withState: 1,
      paramNames: false,
      hyper: [{ lr: "tensor(float32, [])" }],
    });
  });
});

describe("mapOptimizerToNames", () => {
  const expected = new Map(PARAMS.map(([name], i) => [i, name]));

  it("maps by param_names written with Lightning's model. prefix", () => {
    const parsed = parseTorchOptimizerState(adamState({ names: "prefixed" }), []);
    expect(mapOptimizerToNames(parsed, options())).toEqual({
      mapping: "param_names",
      byIndex: expected,
    });
  });

  it("maps by param_names written without it (optimizer built from self.model)", () => {
    const parsed = parseTorchOptimizerState(adamState({ names: "bare" }), []);
    expect(mapOptimizerToNames(parsed, options())).toEqual({
      mapping: "param_names",
      byIndex: expected,
    });
  });

  it("maps by parameter order, skipping buffers, when there are no param_names", () => {
    const parsed = parseTorchOptimizerState(adamState({ names: "none" }), []);
    expect(mapOptimizerToNames(parsed, options())).toEqual({
      mapping: "parameter_order",
      byIndex: expected,
    });
  });

  it("maps by loadout's param_order", () => {
    const parsed = parseTorchOptimizerState(
      adamState({ names: "none", order: [5, 4, 3, 2, 1, 0] }),
      [],
    );
    const loadoutParamOrder = [...SOURCE_KEYS.filter((k) => !/running|tracked/.test(k))].reverse();
    const mapped = mapOptimizerToNames(parsed, options(targetModel(), { loadoutParamOrder }));
    expect(mapped.mapping).toBe("loadout");
    expect(mapped.byIndex).toEqual(new Map(PARAMS.map(([name], i) => [5 - i, name])));
  });

  it("refuses the order when the optimizer has fewer parameters (a frozen one left out)", async () => {
    // Optimizer built from the parameters that require grad; 0.bias was frozen.
    const parsed = parseTorchOptimizerState(
      adamState({ names: "none", order: [0, 2, 3, 4, 5] }),
      [],
    );
    const error = await refusal(
      () => mapOptimizerToNames(parsed, options()),
      "OPTIMIZER_COUNT_MISMATCH",
    );
    expect(error.message).toMatch(/the optimizer has 5 parameters but the source state dict has 6/);
    expect(error.hint).toMatch(/param_names/);
  });

  it("refuses the order when state shapes show it is wrong (groups in another order)", async () => {
    // Two groups (biases first), no param_names: by order, position 0 would be 0.weight.
    const biasesFirst = [1, 3, 5, 0, 2, 4];
    const parsed = parseTorchOptimizerState(adamState({ names: "none", order: biasesFirst }), []);
    const error = await refusal(
      () => mapOptimizerToNames(parsed, options()),
      "OPTIMIZER_SHAPE_MISMATCH",
    );
    expect(error.message).toMatch(/state 0 exp_avg has shape \[3\] but '0\.weight' has \[3, 2\]/);
  });

  it("refuses when a state tensor's shape differs from its named parameter", async () => {
    const parsed = parseTorchOptimizerState(adamState(), []);
    const wider = targetModel({ "2.weight": [2, 3], "2.bias": [2] });
    const error = await refusal(
      () => mapOptimizerToNames(parsed, options(wider)),
      "OPTIMIZER_SHAPE_MISMATCH",
    );
    expect(error.message).toContain("state 4 exp_avg has shape [1, 3] but '2.weight' has [2, 3]");
    expect(error.message).toContain("state 5 exp_avg_sq has shape [1] but '2.bias' has [2]");
  });

  it("refuses the order when a source tensor matches no target", async () => {
    const parsed = parseTorchOptimizerState(adamState({ names: "none" }), []);
    const opts = options(targetModel(), {
      sourceParamOrder: [...SOURCE_KEYS, "model.extra.weight"],
    });
    const error = await refusal(() => mapOptimizerToNames(parsed, opts), "OPTIMIZER_MAPPING");
    expect(error.message).toMatch(/'model\.extra\.weight' matches no target parameter/);
  });

  it("refuses the order when the source order is unknown", async () => {
    const parsed = parseTorchOptimizerState(adamState({ names: "none" }), []);
    await refusal(
      () => mapOptimizerToNames(parsed, options(targetModel(), { sourceParamOrder: undefined })),
      "OPTIMIZER_MAPPING",
    );
  });

  it("refuses param_names that match nothing, a buffer, or two targets", async () => {
    const model = targetModel();
    const parsed = parseTorchOptimizerState(adamState({ names: "bare" }), []);
    const targetParams = model.parameters();
    const none = await refusal(
      () =>
        mapOptimizerToNames(parsed, {
          ...options(model),
          toTarget: (k) => (k === "0.bias" ? "0.bias" : undefined),
        }),
      "OPTIMIZER_MAPPING",
    );
    expect(none.message).toMatch(/'0\.weight' matches no target parameter/);
    // Every unmatched name is listed, not only the first.
    expect(none.message).toMatch(/'2\.bias' matches no target parameter/);
    const buffer = await refusal(
      () =>
        mapOptimizerToNames(parsed, {
          ...options(model),
          toTarget: (k) =>
            k.startsWith("model.") ? undefined : k === "0.bias" ? "1.running_mean" : k,
        }),
      "OPTIMIZER_MAPPING",
    );
    expect(buffer.message).toMatch(/'0\.bias' matched '1\.running_mean', a buffer/);
    // Both `0.weight` and `model.0.weight` are keys of the source, matched to different targets.
    const two = await refusal(
      () =>
        mapOptimizerToNames(parsed, {
          sourceParamOrder: SOURCE_KEYS,
          targetParams,
          toTarget: (k) => (k === "model.0.weight" ? "0.bias" : k),
        }),
      "OPTIMIZER_MAPPING",
    );
    expect(two.message).toMatch(/'0\.weight' could be any of '0\.weight', '0\.bias'/);
  });

  it("refuses param_names in only some groups", async () => {
    const state = adamState();
    const [group] = state.get("param_groups") as Map<PyValue, PyValue>[];
    const second = dict([["params", [6]]]);
    state.set("param_groups", [group!, second]);
    const parsed = parseTorchOptimizerState(state, []);
    await refusal(() => mapOptimizerToNames(parsed, options()), "OPTIMIZER_MAPPING");
  });

  it("refuses loadout's param_order of the wrong length", async () => {
    const parsed = parseTorchOptimizerState(adamState({ names: "none" }), []);
    await refusal(
      () =>
        mapOptimizerToNames(
          parsed,
          options(targetModel(), { loadoutParamOrder: ["model.0.weight"] }),
        ),
      "OPTIMIZER_COUNT_MISMATCH",
    );
  });
});

describe("toOptimizerState", () => {
  it("reads every tensor and scalar, keyed by target name, and applies to a MemoryOptimizer", async () => {
    const parsed = parseTorchOptimizerState(adamState(), ["optimizer_states", 0]);
    const model = targetModel();
    const { byIndex } = mapOptimizerToNames(parsed, options(model));
    const state = await toOptimizerState(parsed, byIndex, "AdamW");
    expect(state.type).toBe("AdamW");
    expect(state.groups).toEqual([
      {
        params: PARAMS.map(([name]) => name),
        hyper: {
          lr: 0.001,
          betas: [0.9, 0.999],
          eps: 1e-8,
          weight_decay: 0.01,
          amsgrad: false,
          foreach: null,
          decoupled_weight_decay: true,
          initial_lr: 0.001,
        },
      },
    ]);
    PARAMS.forEach(([name, shape], i) => {
      const entry = state.state.get(name)!;
      const n = numelOf(shape);
      expect(entry.scalars).toEqual({ step: 3 });
      expect(entry.tensors.get("exp_avg")).toEqual(Float32Array.from(expAvg(i, n)));
      expect(sum(entry.tensors.get("exp_avg_sq") as Float32Array)).toBeCloseTo(
        sum(expAvgSq(i, n)),
        5,
      );
    });
    const optimizer = new MemoryOptimizer(
      "AdamW",
      [{ params: PARAMS.map(([n]) => n), hyper: { lr: 0.01 } }],
      { params: model.parameters() },
    );
    await optimizer.setState(state);
    expect(optimizer.getState()).toEqual(state);
  });

  it("reads tensor hyperparameters and converts state on request", async () => {
    const parsed = parseTorchOptimizerState(
      dict([
        [
          "state",
          dict([
            [
              0,
              dict([
                ["step", scalarTensor(7)],
                ["momentum_buffer", tensorOf([0x3c00, 0xc000], [2], "float16")],
              ]),
            ],
          ]),
        ],
        [
          "param_groups",
          [
            dict([
              ["lr", scalarTensor(0.25)],
              ["params", [0]],
            ]),
          ],
        ],
      ]),
      [],
    );
    const byIndex = new Map([[0, "w"]]);
    const raw = await toOptimizerState(parsed, byIndex);
    expect(raw.type).toBeUndefined();
    expect(raw.groups[0]!.hyper.lr).toBe(0.25);
    expect(raw.state.get("w")!.tensors.get("momentum_buffer")).toEqual(
      Uint16Array.from([0x3c00, 0xc000]),
    );
    const widened = await toOptimizerState(parsed, byIndex, "SGD", { dtype: "float32" });
    expect(widened.state.get("w")!.tensors.get("momentum_buffer")).toEqual(
      Float32Array.from([1, -2]),
    );
    expect(widened.state.get("w")!.scalars).toEqual({ step: 7 });
  });

  it("refuses a position without a name", async () => {
    const parsed = parseTorchOptimizerState(adamState(), []);
    await expect(toOptimizerState(parsed, new Map([[0, "0.weight"]]))).rejects.toThrow(LoadError);
  });
});
