import { open } from "node:fs/promises";

/** Reads whole files once so that every contender then reads them from the page cache. */

const CHUNK = 16 << 20;
let scratch;

export async function warmPageCache(...paths) {
  scratch ??= new Uint8Array(CHUNK);
  for (const path of paths) {
    const handle = await open(path, "r");
    try {
      for (;;) {
        const { bytesRead } = await handle.read(scratch, 0, CHUNK, null);
        if (bytesRead === 0) break;
      }
    } finally {
      await handle.close();
    }
  }
}
