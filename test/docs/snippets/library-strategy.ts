// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import {
  LoadError,
  MemoryOptimizer,
  modelFromStateDict,
  openCheckpointFile,
  type PipelineStage,
  parseConfigText,
  policyStrategy,
  registerStrategy,
  runLoad,
  strategyNames,
  unregisterStrategy,
} from "loadout/node";

// A strategy named in configs like a built-in one: restore the weights and the optimizer, but
// keep the run's own scheduler and counters (a "fork" of a run).
registerStrategy("fork_run", () =>
  policyStrategy({
    name: "fork_run",
    optimizer: "restore",
    scheduler: "keep",
    trainingState: "keep",
    resetLayers: false,
  }),
);

// A stage that runs before the strategy: refuse a checkpoint trained on other variables.
const VARIABLES = ["10u", "10v", "2t", "lsm", "tp"];
const checkVariables: PipelineStage = {
  name: "check_variables",
  async process(context) {
    const anemoi = context.metadata["anemoi-metadata/anemoi.json"] as
      | { dataset?: { variables?: string[] } }
      | undefined;
    const found = anemoi?.dataset?.variables ?? [];
    if (found.join() !== VARIABLES.join()) {
      throw new LoadError("WRONG_VARIABLES", `trained on [${found}], not [${VARIABLES}]`, {
        file: context.checkpoint.name,
      });
    }
    return context; // stages return a context; this one changes nothing
  },
};

const yaml = `
checkpoint:
  loading:
    type: fork_run
    exclude: [model.pre_processors] # normaliser buffers this model does not have
`;
const { config } = parseConfigText(yaml, { knownTypes: strategyNames() });

const fresh = await openCheckpointFile("test/fixtures/torch/net_fresh.pt");
const model = await modelFromStateDict(fresh.stateDict()!.tensors);
await fresh.close();
const params = model.parameters();
const trainable = params.filter((p) => p.kind === "parameter").map((p) => p.name);
const optimizer = new MemoryOptimizer("AdamW", [{ params: trainable, hyper: {} }], { params });

const checkpoint = await openCheckpointFile("test/fixtures/torch/anemoi.ckpt");
try {
  const { report, trainingState } = await runLoad({
    checkpoint,
    targets: { model, optimizer },
    config: config.checkpoint.loading,
    trainingState: { epoch: 7, globalStep: 700, bestMetric: null, metricsHistory: [] },
    before: [checkVariables],
  });
  console.log(`stages: ${report.stages.map((s) => s.name).join(" → ")}`);
  console.log(
    `optimizer: ${report.plan!.optimizer!.action}, training state kept: epoch ${trainingState.epoch}`,
  );
} finally {
  await checkpoint.close();
  unregisterStrategy("fork_run");
}
// doc:end
