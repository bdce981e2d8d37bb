// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import { readFile } from "node:fs/promises";
import { MemorySource, openCheckpoint } from "loadout";

// In a browser: const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
const bytes = new Uint8Array(await readFile("test/fixtures/safetensors/basic.safetensors"));
const checkpoint = await openCheckpoint(new MemorySource(bytes, "basic.safetensors"));
console.log(`${checkpoint.name}: ${checkpoint.format}, ${checkpoint.tensors().length} tensors`);
console.log(`metadata format: ${checkpoint.metadata?.format}`);
// doc:end
