// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import {
  arrayTensor,
  MemoryOptimizer,
  MemoryScheduler,
  modelFromStateDict,
  openAtomicFile,
  openCheckpointFile,
  resolveLoadingConfig,
  runLoad,
  type TensorLike,
  writeTrainingCheckpoint,
} from "loadout/node";

const warmStart = resolveLoadingConfig({ type: "warm_start" });

/** Fresh model, optimizer and scheduler targets, built as a run would build them. */
async function freshRun() {
  const file = await openCheckpointFile("test/fixtures/torch/net_fresh.pt");
  const model = await modelFromStateDict(file.stateDict()!.tensors);
  await file.close();
  const params = model.parameters();
  const names = params.filter((p) => p.kind === "parameter").map((p) => p.name);
  const optimizer = new MemoryOptimizer("AdamW", [{ params: names, hyper: {} }], { params });
  return { model, optimizer, scheduler: new MemoryScheduler("CosineAnnealingLR", {}) };
}

// Resume the Lightning run, then save it in Lightning's layout with loadout's record.
const run = await freshRun();
const lightning = await openCheckpointFile("test/fixtures/torch/lightning.ckpt");
const { trainingState } = await runLoad({ checkpoint: lightning, targets: run, config: warmStart });
await lightning.close();

const weights = new Map<string, TensorLike>();
for (const p of run.model.parameters()) {
  weights.set(p.name, arrayTensor(p.dtype, p.shape, await run.model.read(p.name)));
}
await writeTrainingCheckpoint(await openAtomicFile("out/resume.ckpt"), {
  model: weights,
  optimizer: run.optimizer.getState(),
  scheduler: run.scheduler.getState(),
  trainingState,
});

// A later process resumes from the file loadout wrote.
const next = await freshRun();
const saved = await openCheckpointFile("out/resume.ckpt");
try {
  const resumed = await runLoad({ checkpoint: saved, targets: next, config: warmStart });
  console.log(`optimizer names by: ${resumed.report.plan!.optimizer!.mapping}`);
  console.log(`epoch ${resumed.trainingState.epoch}, step ${resumed.trainingState.globalStep}`);
} finally {
  await saved.close();
}
// doc:end
