// Shown in docs/strategies/cold_start.md; run by test/docs/snippets.test.ts.
// doc:start
import { MemoryModel, openCheckpointFile, resolveLoadingConfig, runLoad } from "loadout/node";

// A model that knows how to initialise itself: `init` gives a parameter fresh values when it is
// reset (here zeros, as for a zero-initialised head; your framework's initialiser in practice).
const fresh = await openCheckpointFile("test/fixtures/torch/net_wide_fresh.pt");
const model = new MemoryModel(
  await Promise.all(
    [...fresh.stateDict()!.tensors].map(async ([name, tensor]) => ({
      name,
      shape: tensor.shape,
      dtype: tensor.dtype,
      kind: /running_|num_batches/.test(name) ? ("buffer" as const) : ("parameter" as const),
      value: await tensor.read(),
      ...(name.startsWith("head.") ? { init: () => new Float32Array(tensor.numel) } : {}),
    })),
  ),
);
await fresh.close();

const checkpoint = await openCheckpointFile("test/fixtures/torch/lightning.ckpt");
try {
  const config = resolveLoadingConfig({ type: "cold_start", reset_layers: ["head"] });
  const { report, trainingState } = await runLoad({ checkpoint, targets: { model }, config });
  const reset = report.plan!.entries.filter((e) => e.action === "reset").map((e) => e.target);
  console.log(`reset: ${reset.join(", ")}`);
  const bias = (await model.read("head.bias")) as Float32Array;
  console.log(`head.bias[0..1]: ${[...bias.subarray(0, 2)].map((v) => v.toFixed(6)).join(", ")}`);
  console.log(`epoch ${trainingState.epoch}, step ${trainingState.globalStep}`);
} finally {
  await checkpoint.close();
}
// doc:end
