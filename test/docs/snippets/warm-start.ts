// Shown in docs/strategies/warm_start.md; run by test/docs/snippets.test.ts.
// doc:start
import {
  MemoryOptimizer,
  MemoryScheduler,
  modelFromStateDict,
  openCheckpointFile,
  resolveLoadingConfig,
  runLoad,
} from "loadout/node";

const fresh = await openCheckpointFile("test/fixtures/torch/net_fresh.pt");
const model = await modelFromStateDict(fresh.stateDict()!.tensors);
await fresh.close();
// The run's optimizer and scheduler, as freshly built: state is keyed by parameter name.
const params = model.parameters();
const trainable = params.filter((p) => p.kind === "parameter").map((p) => p.name);
const optimizer = new MemoryOptimizer("AdamW", [{ params: trainable, hyper: { lr: 1e-3 } }], {
  params,
});
const scheduler = new MemoryScheduler("CosineAnnealingLR", {});

const checkpoint = await openCheckpointFile("test/fixtures/torch/lightning.ckpt");
try {
  const { report, trainingState } = await runLoad({
    checkpoint,
    targets: { model, optimizer, scheduler },
    config: resolveLoadingConfig({ type: "warm_start" }),
  });
  console.log(`optimizer names by: ${report.plan!.optimizer!.mapping}`);
  const head = optimizer.getState().state.get("head.bias")!;
  const expAvg = head.tensors.get("exp_avg") as Float32Array;
  console.log(`head.bias: step ${head.scalars.step}, exp_avg[0] ${expAvg[0]!.toExponential(6)}`);
  console.log(`lr ${optimizer.getState().groups[0]!.hyper.lr}`);
  console.log(`scheduler last_epoch ${scheduler.getState().last_epoch}`);
  console.log(`resume at epoch ${trainingState.epoch}, step ${trainingState.globalStep}`);
} finally {
  await checkpoint.close();
}
// doc:end
