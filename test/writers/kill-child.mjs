// Child process of kill.test.ts: writes a ~20 MB safetensors file slowly through the real
// openAtomicFile and writeSafetensors, so the test can SIGKILL it at any moment. Plain JavaScript
// importing the compiled dist/ output, because Node 20 cannot run TypeScript itself (`npm test`
// builds dist first; kill.test.ts builds it when it is missing or stale).
// Usage: node kill-child.mjs <destination> <version> <tensor count> <delay ms per tensor>
import { openAtomicFile } from "../../dist/writers/file-sink.js";
import { writeSafetensors } from "../../dist/writers/safetensors-writer.js";

const [destination, versionText, countText, delayText] = process.argv.slice(2);
const version = Number(versionText);
const tensorCount = Number(countText);
const delayMs = Number(delayText);
/** 512 KiB of float32 per tensor. */
const ELEMENTS = 1 << 17;

/** Tensor `index` of `version` holds version * 1000 + index everywhere, after a delay. */
function slowTensor(index) {
  return {
    dtype: "float32",
    shape: [ELEMENTS],
    async read() {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return new Float32Array(ELEMENTS).fill(version * 1000 + index);
    },
  };
}

const entries = Array.from({ length: tensorCount }, (_, i) => [
  `t${String(i).padStart(3, "0")}`,
  slowTensor(i),
]);
// Node has started: wait for the test's "go" (it starts the next child while checking the last).
await new Promise((resolve) => process.stdin.once("data", resolve));
process.stdin.destroy();
// A 1 MiB buffer: many separate writes to the temporary file while the kills land.
const sink = await openAtomicFile(destination, { bufferBytes: 1 << 20 });
// The temporary file exists: from here on a kill lands mid-write.
process.stdout.write("ready\n");
await writeSafetensors(sink, entries, { metadata: { version: String(version) } });
