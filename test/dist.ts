/**
 * For tests whose child processes import the compiled dist/ (Node 20 runs no TypeScript, and tsx
 * is not a dependency). `npm test` builds dist before vitest; for a standalone run, ensureDist
 * builds it with tsconfig.build.json when an output is missing or older than its sources. tsc
 * still emits when other files have type errors, so a half-finished file elsewhere does not
 * stop such a test.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The newest modification time of the .ts files under `folders` (relative to the root), and of src/errors.ts. */
function newestSource(folders: readonly string[]): number {
  let newest = statSync(join(ROOT, "src/errors.ts")).mtimeMs;
  const pending = folders.map((folder) => join(ROOT, folder));
  for (let folder = pending.pop(); folder !== undefined; folder = pending.pop()) {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/** Builds dist when any of `outputs` is missing or older than the sources under `folders`. */
export async function ensureDist(
  outputs: readonly string[],
  folders: readonly string[],
): Promise<void> {
  const paths = outputs.map((file) => join(ROOT, file));
  const stale =
    paths.some((file) => !existsSync(file)) ||
    Math.min(...paths.map((file) => statSync(file).mtimeMs)) < newestSource(folders);
  if (!stale) return;
  // Exit status ignored: type errors in files being edited elsewhere still leave JS emitted.
  await new Promise<void>((resolve) => {
    execFile("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: ROOT }, () => resolve());
  });
  for (const file of paths) {
    if (!existsSync(file)) throw new Error(`building dist did not produce ${file}`);
  }
}
