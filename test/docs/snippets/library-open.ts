// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import { openCheckpointFile } from "loadout/node";

const checkpoint = await openCheckpointFile("test/fixtures/torch/anemoi.ckpt", {
  strict: false, // the default: unknown classes open as inert opaque objects
  allowGlobals: [], // globals to accept as inert calls, e.g. "datetime.datetime"
});
try {
  console.log(`${checkpoint.format}, pickle protocol ${checkpoint.details.protocol}`);
  console.log(`${checkpoint.tensors().length} tensors; ${checkpoint.bytesRead} bytes read so far`);
  console.log(`opaque: ${[...checkpoint.opaqueClasses].slice(0, 2).join(", ")}, ...`);
} finally {
  await checkpoint.close(); // releases the file handle
}
// doc:end
