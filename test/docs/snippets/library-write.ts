// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import {
  arrayTensor,
  createMemorySink,
  openAtomicFile,
  openCheckpointFile,
  writeSafetensors,
  writeTorchCheckpoint,
} from "loadout/node";

const checkpoint = await openCheckpointFile("test/fixtures/torch/lightning.ckpt");
try {
  // Lazy tensors stream from the source file, chunk by chunk, into the new one.
  const weights = [...checkpoint.stateDict()!.tensors].map(
    ([key, tensor]) => [key.replace(/^model\./, ""), tensor] as const,
  );
  // safetensors, byte for byte as the reference serializer writes it; atomically.
  const st = await writeSafetensors(await openAtomicFile("out/net.safetensors"), weights, {
    metadata: { format: "pt" },
  });
  console.log(`safetensors: ${st.tensors} tensors, ${st.bytes} bytes`);
  // What torch.save(state_dict) writes; torch.load(..., weights_only=True) reads it.
  const pt = await writeTorchCheckpoint(await openAtomicFile("out/net.pt"), new Map(weights), {
    folder: "net",
  });
  console.log(`torch: ${pt.storages} storages, ${pt.bytes} bytes`);
} finally {
  await checkpoint.close();
}

// Anywhere, including a browser: into memory (or any ByteSink), from arrays you hold.
const sink = createMemorySink();
await writeSafetensors(sink, [["scale", arrayTensor("float32", [2], Float32Array.of(0.5, 2))]]);
console.log(`in memory: ${sink.bytes().byteLength} bytes`);
// doc:end
