// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import { openCheckpointFile, readTrainingState } from "loadout/node";

const checkpoint = await openCheckpointFile("test/fixtures/torch/anemoi.ckpt");
try {
  // The model's state dict: Lightning's state_dict, model_state_dict, model, a pickled
  // nn.Module, or a top-level dict of tensors.
  const stateDict = checkpoint.stateDict()!;
  const keys = [...stateDict.tensors.keys()];
  console.log(`state dict at '${stateDict.path.join("/")}': ${keys.length} tensors, ${keys[2]}...`);

  // Where the run stood: Lightning's counters...
  console.log(`counters: ${JSON.stringify(await checkpoint.trainingCounters())}`);
  // ...or the most specific record the file has (loadout's, Lightning's, anemoi's metadata).
  const { state, origin, notes } = await readTrainingState(checkpoint);
  console.log(`training state from ${origin}: ${JSON.stringify(state)}`);
  console.log(notes.join("; "));

  // JSON metadata records stored in the zip.
  for (const { name, value } of await checkpoint.jsonMetadata()) {
    console.log(`${name}: ${Object.keys(value as object).join(", ")}`);
  }
} finally {
  await checkpoint.close();
}
// doc:end
