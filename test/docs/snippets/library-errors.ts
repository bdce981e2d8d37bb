// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import { LoadoutError, openCheckpointFile, UnsafeCheckpointError } from "loadout/node";

try {
  await openCheckpointFile("test/docs/fixtures/dated.ckpt");
} catch (error) {
  if (error instanceof UnsafeCheckpointError) {
    console.log(`${error.name} ${error.code}: global ${error.global} at offset ${error.offset}`);
    console.log(`what: ${error.what}`);
  } else if (error instanceof LoadoutError) {
    console.log(`${error.code} in ${error.file}`);
  } else {
    throw error; // not loadout's: an I/O error such as ENOENT
  }
}
// doc:end
