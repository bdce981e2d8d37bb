// Shown in docs/strategies/transfer_learning.md; run by test/docs/snippets.test.ts.
// doc:start
import {
  formatShape,
  modelFromStateDict,
  openCheckpointFile,
  resolveLoadingConfig,
  runLoad,
} from "loadout/node";

const fresh = await openCheckpointFile("test/fixtures/torch/net_wide_fresh.pt");
const model = await modelFromStateDict(fresh.stateDict()!.tensors); // head: 12 classes
await fresh.close();

const checkpoint = await openCheckpointFile("test/fixtures/torch/lightning.ckpt"); // 10 classes
try {
  const config = resolveLoadingConfig({ type: "transfer_learning", mismatch: "overlap" });
  const { report, trainingState } = await runLoad({ checkpoint, targets: { model }, config });
  for (const entry of report.plan!.entries.filter((e) => e.overlap)) {
    const block = formatShape(entry.overlap!);
    console.log(`${entry.target}: copied block ${block} of ${formatShape(entry.targetShape)}`);
  }
  const bias = (await model.read("head.bias")) as Float32Array;
  console.log(`head.bias[9..11]: ${[...bias.subarray(9)].map((v) => v.toFixed(6)).join(", ")}`);
  console.log(`epoch ${trainingState.epoch}, step ${trainingState.globalStep}`);
} finally {
  await checkpoint.close();
}
// doc:end
