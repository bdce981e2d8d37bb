import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoadError } from "../../src/errors.js";
import { planTfjsLoad, runTfjsLoad } from "../../src/tfjs/load.js";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { layerForModule, mapPytorchStateDict } from "../../src/tfjs/pytorch-mapping.js";
import {
  buildNet,
  buildSeqNet,
  config,
  netInput,
  openFixture,
  readJson,
  tfjsFixture,
  torchFixture,
  useBackend,
} from "./helpers.js";

interface Values {
  shape: number[];
  values: number[];
}
interface NetForward {
  input: Values;
  cases: { weights: string; output: Values; activations: Record<string, Values> }[];
}
interface SeqForward {
  tokens: Values;
  output: Values;
  activations: Record<string, Values>;
}

const netForward = readJson<NetForward>(torchFixture("net_forward.json"));
const seqForward = readJson<SeqForward>(tfjsFixture("seq_forward.json"));

function expectClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  }
  expect(worst).toBeLessThanOrEqual(tolerance);
}

beforeAll(() => useBackend("wasm"));

describe("PyTorch Net into the equivalent tfjs model", () => {
  for (const testCase of netForward.cases) {
    it(`predicts what PyTorch predicts with ${testCase.weights}'s weights`, async () => {
      const checkpoint = await openFixture(torchFixture(testCase.weights));
      const model = buildNet();
      try {
        const { report } = await runTfjsLoad({
          checkpoint,
          targets: { model: tfjsModelTarget(model) },
          config: config({ type: "weights_only" }),
          pytorch: true,
        });
        // weights_only is strict: every tfjs weight loaded, num_batches_tracked set aside.
        expect(report.plan!.entries.every((e) => e.action === "load")).toBe(true);
        expect(report.plan!.unexpected.map((u) => u.source)).toEqual([
          `${testCase.weights === "lightning.ckpt" ? "model." : ""}bn.num_batches_tracked`,
        ]);
        const x = netInput(netForward.input.values, netForward.input.shape);
        const y = model.predict(x) as tf.Tensor;
        expect(y.shape).toEqual(testCase.output.shape);
        expectClose(y.dataSync(), testCase.output.values, 1e-5);
        tf.dispose([x, y]);
      } finally {
        model.dispose();
        await checkpoint.close();
      }
    });
  }

  it("shows every layout transform and why num_batches_tracked is not loaded", async () => {
    const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
    const model = buildNet();
    const plan = await planTfjsLoad({
      checkpoint,
      targets: { model: tfjsModelTarget(model) },
      config: config({ type: "weights_only" }),
      pytorch: true,
    });
    const byTarget = new Map(plan.entries.map((e) => [e.target, e]));
    // Values go by their tfjs names; the transform says which PyTorch key each came from.
    expect(byTarget.get("conv/kernel")).toMatchObject({
      source: "conv/kernel",
      sourceShape: [3, 3, 3, 8],
      targetShape: [3, 3, 3, 8],
      transform: "permute OIHW → HWIO of conv.weight",
    });
    expect(byTarget.get("fc/kernel")).toMatchObject({
      sourceShape: [8, 16],
      transform: "transpose [out, in] → [in, out] of fc.weight",
    });
    expect(byTarget.get("bn/moving_variance")?.transform).toBe("renamed from bn.running_var");
    expect(byTarget.get("norm/gamma")?.transform).toBe("renamed from norm.weight");
    expect(byTarget.get("fc/bias")?.transform).toBe("renamed from fc.bias");
    expect(plan.violations).toEqual([]);
    expect(plan.unexpected).toEqual([
      {
        source: "bn.num_batches_tracked",
        shape: [],
        dtype: "int64",
        reason: expect.stringMatching(/^unused: PyTorch's count of BatchNorm batches/),
      },
    ]);
    model.dispose();
    await checkpoint.close();
  });
});

describe("PyTorch SeqNet (Embedding, Conv1d, LayerNorm, LSTM, Linear) into tfjs", () => {
  async function loadSeqNet(file: string) {
    const checkpoint = await openFixture(tfjsFixture(file));
    const model = buildSeqNet();
    const { report } = await runTfjsLoad({
      checkpoint,
      targets: { model: tfjsModelTarget(model) },
      config: config({ type: "weights_only" }),
      pytorch: true,
    });
    await checkpoint.close();
    return { model, plan: report.plan!, report };
  }

  it("predicts what PyTorch predicts: the LSTM gate order i, f, g, o is tfjs's i, f, c, o", async () => {
    const { model, plan } = await loadSeqNet("seq_net.pt");
    const byTarget = new Map(plan.entries.map((e) => [e.target, e]));
    expect(byTarget.get("lstm/bias")?.transform).toBe("sum lstm.bias_ih_l0 + lstm.bias_hh_l0");
    expect(byTarget.get("lstm/kernel")?.transform).toMatch(/^transpose \[4·hidden, in\]/);
    expect(byTarget.get("conv/kernel")).toMatchObject({
      sourceShape: [3, 4, 6],
      transform: "permute OIW → WIO of conv.weight",
    });
    expect(byTarget.get("embed/embeddings")?.transform).toBe("renamed from embed.weight");
    const tokens = tf.tensor(seqForward.tokens.values, seqForward.tokens.shape, "int32");
    const y = model.predict(tokens) as tf.Tensor;
    expectClose(y.dataSync(), seqForward.output.values, 1e-5);
    // The LSTM's own output, before the head, too.
    const lstmOut = tf.model({ inputs: model.inputs, outputs: model.getLayer("lstm").output });
    const h = lstmOut.predict(tokens) as tf.Tensor;
    expectClose(h.dataSync(), seqForward.activations.lstm!.values, 1e-5);
    tf.dispose([tokens, y, h]);
    model.dispose();
  });

  it("converts float64 checkpoints to tfjs's float32 and says so in the plan", async () => {
    const { model, plan } = await loadSeqNet("seq_net_float64.pt");
    for (const entry of plan.entries) {
      expect(entry.conversion).toEqual({ from: "float64", to: "float32", lossy: true });
    }
    const tokens = tf.tensor(seqForward.tokens.values, seqForward.tokens.shape, "int32");
    const y = model.predict(tokens) as tf.Tensor;
    expectClose(y.dataSync(), seqForward.output.values, 1e-5);
    tf.dispose([tokens, y]);
    model.dispose();
  });

  it("warns when a tfjs layer computes differently from PyTorch's defaults", async () => {
    const checkpoint = await openFixture(tfjsFixture("seq_net.pt"));
    const model = tf.sequential({
      layers: [
        tf.layers.embedding({ name: "embed", inputDim: 10, outputDim: 4, inputLength: 7 }),
        tf.layers.conv1d({ name: "conv", filters: 6, kernelSize: 3 }),
        tf.layers.layerNormalization({ name: "norm" }),
        tf.layers.lstm({ name: "lstm", units: 5 }),
        tf.layers.dense({ name: "head", units: 3 }),
      ],
    });
    const { report } = await runTfjsLoad({
      checkpoint,
      targets: { model: tfjsModelTarget(model) },
      config: config({ type: "weights_only" }),
      pytorch: true,
    });
    expect(report.warnings).toEqual([
      "tfjs layer 'norm' has epsilon 0.001; PyTorch's LayerNorm default is 1e-5 (set epsilon: 1e-5 for the same outputs)",
      "tfjs LSTM 'lstm' has recurrentActivation hardSigmoid; PyTorch's LSTM uses sigmoid (set recurrentActivation: 'sigmoid')",
    ]);
    model.dispose();
    await checkpoint.close();
  });
});

describe("dtypes tfjs lacks", () => {
  interface Mixed {
    tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
  }
  const mixed = readJson<Mixed>(tfjsFixture("mixed_dtypes.json")).tensors;

  /** Dense layers f64, f16, bf16 (3→2) and int32 weights `count/value`, `big/value` of 3. */
  function buildMixedModel() {
    class Counter extends tf.layers.Layer {
      static className = "Counter";
      override build() {
        this.addWeight("value", [3], "int32", tf.initializers.zeros(), undefined, false);
        this.built = true;
      }
    }
    const input = tf.input({ shape: [3] });
    const dense = (name: string) => tf.layers.dense({ name, units: 2 }).apply(input);
    const outputs = ["f64", "f16", "bf16"].map((n) => dense(n) as tf.SymbolicTensor);
    const count = new Counter({ name: "count" });
    const big = new Counter({ name: "big" });
    outputs.push(count.apply(input) as tf.SymbolicTensor, big.apply(input) as tf.SymbolicTensor);
    return tf.model({ inputs: input, outputs });
  }

  it("widens float16, bfloat16 and float64 to float32 exactly as torch's .float() does", async () => {
    const checkpoint = await openFixture(tfjsFixture("mixed_dtypes.pt"));
    const model = buildMixedModel();
    const target = tfjsModelTarget(model);
    const plan = await planTfjsLoad({
      checkpoint,
      targets: { model: target },
      config: config({ type: "transfer_learning" }),
      pytorch: true,
    });
    const conversions = Object.fromEntries(
      plan.entries.map((e) => [
        e.target,
        e.conversion && `${e.conversion.from}→${e.conversion.to}`,
      ]),
    );
    expect(conversions).toEqual({
      "f64/kernel": "float64→float32",
      "f64/bias": "float64→float32",
      "f16/kernel": "float16→float32",
      "f16/bias": "float16→float32",
      "bf16/kernel": "bfloat16→float32",
      "bf16/bias": "bfloat16→float32",
      "count/value": "int64→int32",
      "big/value": "int64→int32",
    });
    // big.value holds 2^40: only the rest can load.
    await expect(
      runTfjsLoad({
        checkpoint,
        targets: { model: target },
        config: config({ type: "transfer_learning" }),
        pytorch: true,
      }),
    ).rejects.toMatchObject({ code: "INT32_OVERFLOW", key: "big.value" });
    expect([...(await target.read("count/value"))]).toEqual([0, 0, 0]);
    await runTfjsLoad({
      checkpoint,
      targets: { model: target },
      config: config({ type: "transfer_learning", exclude: ["big/*"] }),
      pytorch: true,
    });
    for (const name of ["f64", "f16", "bf16"]) {
      const weight = mixed[`${name}.weight`]!;
      // PyTorch [out, in] → tfjs [in, out].
      const transposed = [0, 1, 2].flatMap((i) => [weight.values[i]!, weight.values[3 + i]!]);
      expect([...(await target.read(`${name}/kernel`))]).toEqual(transposed);
      expect([...(await target.read(`${name}/bias`))]).toEqual(mixed[`${name}.bias`]!.values);
    }
    expect([...(await target.read("count/value"))]).toEqual(mixed["count.value"]!.values);
    model.dispose();
    await checkpoint.close();
  });

  it("refuses an int64 value beyond int32 before writing anything, in place too", async () => {
    const checkpoint = await openFixture(tfjsFixture("mixed_dtypes.pt"));
    const model = buildMixedModel();
    const target = tfjsModelTarget(model);
    const before = await target.read("f64/kernel");
    await expect(
      runTfjsLoad({
        checkpoint,
        targets: { model: target },
        config: config({ type: "transfer_learning", mode: "in_place" }),
        pytorch: true,
      }),
    ).rejects.toMatchObject({ code: "INT32_OVERFLOW" });
    expect(await target.read("f64/kernel")).toEqual(before);
    model.dispose();
    await checkpoint.close();
  });
});

describe("module paths to layer names", () => {
  const layers = new Map([
    ["encoder_fc", 1],
    ["fc", 2],
    ["inner/conv", 3],
    ["head", 4],
  ]);

  it("tries dots as slashes, then as underscores, then the last segment", () => {
    expect(layerForModule("inner.conv", layers)).toBe("inner/conv");
    expect(layerForModule("encoder.fc", layers)).toBe("encoder_fc");
    expect(layerForModule("model.head", layers)).toBe("head");
    expect(layerForModule("decoder.fc", layers)).toBe("fc");
    expect(layerForModule("decoder.out", layers)).toBeUndefined();
    expect(layerForModule("", layers)).toBeUndefined();
  });

  it("refuses two modules reaching one layer, and key_map resolves it", async () => {
    const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
    const tensors = checkpoint.stateDict()!.tensors;
    const doubled = new Map(tensors);
    doubled.set("extra.head.weight", tensors.get("head.weight")!);
    const model = buildNet();
    expect(() => mapPytorchStateDict(doubled, model)).toThrow(LoadError);
    expect(() => mapPytorchStateDict(doubled, model)).toThrow(
      /PyTorch modules 'head' and 'extra.head' both map to tfjs layer 'head'/,
    );
    const mapped = mapPytorchStateDict(doubled, model, {
      keyMap: [{ pattern: "^extra\\.head\\.", replacement: "spare." }],
    });
    expect(mapped.tensors.get("head/kernel")?.sources).toEqual(["head.weight"]);
    expect(mapped.tensors.has("extra.head.weight")).toBe(true);
    model.dispose();
    await checkpoint.close();
  });

  it("loads into nested models and renamed modules", async () => {
    const checkpoint = await openFixture(torchFixture("net_state_dict.pt"));
    const inner = tf.sequential({
      name: "backbone",
      layers: [tf.layers.dense({ name: "fc", inputShape: [8], units: 16 })],
    });
    const model = tf.sequential({
      layers: [inner, tf.layers.dense({ name: "classifier", units: 10 })],
    });
    const mapped = mapPytorchStateDict(checkpoint.stateDict()!.tensors, model, {
      keyMap: [
        { pattern: "^fc\\.", replacement: "backbone.fc." },
        { pattern: "^head\\.", replacement: "classifier." },
      ],
    });
    expect(mapped.tensors.get("backbone/fc/kernel")?.sources).toEqual(["fc.weight"]);
    expect(mapped.tensors.get("classifier/bias")?.sources).toEqual(["head.bias"]);
    expect(mapped.tensors.get("conv.weight")?.transform).toBeNull();
    model.dispose();
    await checkpoint.close();
  });
});

afterAll(() => {
  tf.disposeVariables();
});
