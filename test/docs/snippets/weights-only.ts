// Shown in docs/strategies/weights_only.md; run by test/docs/snippets.test.ts.
// doc:start
import {
  modelFromStateDict,
  openCheckpointFile,
  planLoad,
  resolveLoadingConfig,
  runLoad,
} from "loadout/node";

// The model to load into: here made from a fresh model's state dict, as `--target` does.
const fresh = await openCheckpointFile("test/fixtures/torch/net_fresh.pt");
const model = await modelFromStateDict(fresh.stateDict()!.tensors);
await fresh.close();

const checkpoint = await openCheckpointFile("test/fixtures/torch/lightning.ckpt");
try {
  const request = {
    checkpoint,
    targets: { model },
    config: resolveLoadingConfig({ type: "weights_only" }),
  };
  const plan = await planLoad(request); // no side effects
  if (plan.violations.length > 0) throw new Error(plan.violations.join("\n"));
  const { report } = await runLoad(request); // all or nothing
  console.log(`loaded ${report.tensorsLoaded} tensors, ${report.bytesLoaded} bytes`);
  const bias = (await model.read("head.bias")) as Float32Array;
  console.log(`head.bias[0..2]: ${[...bias.subarray(0, 3)].map((v) => v.toFixed(6)).join(", ")}`);
} finally {
  await checkpoint.close();
}
// doc:end
