/**
 * Node.js entry point: everything in the core, plus opening checkpoints from local files.
 * (The core never imports `node:` modules so that it can run in a browser.)
 */
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import type { Checkpoint } from "./checkpoint/checkpoint.js";
import { type OpenOptions, openCheckpoint } from "./checkpoint/open.js";
import { FormatError } from "./errors.js";
import type { ByteSource } from "./io/byte-source.js";
import { FileSource } from "./io/file-source.js";

export { loadConfigFile } from "./config/load-file.js";
export * from "./index.js";
export * from "./writers/file-sink.js";
export { FileSource };

/** Opens a file named relative to `base`'s folder, refusing names that escape it. */
export function siblingOpener(base: string): (name: string) => Promise<ByteSource> {
  const folder = dirname(resolve(base));
  return async (name: string) => {
    const target = resolve(folder, name);
    const inside = relative(folder, target);
    if (
      isAbsolute(name) ||
      inside.startsWith(`..${sep}`) ||
      inside === ".." ||
      isAbsolute(inside)
    ) {
      throw new FormatError(
        "SHARD_OUTSIDE_FOLDER",
        `shard '${name}' lies outside the index's folder`,
        {
          file: base,
          hint: "Shard names in weight_map must be plain file names next to the index.",
        },
      );
    }
    return FileSource.open(target);
  };
}

/** Opens a checkpoint file (PyTorch zip or legacy, safetensors, or a sharded safetensors index). */
export async function openCheckpointFile(
  path: string,
  options: OpenOptions = {},
): Promise<Checkpoint> {
  const source = await FileSource.open(path);
  try {
    return await openCheckpoint(source, { openRelative: siblingOpener(path), ...options });
  } catch (error) {
    await source.close();
    throw error;
  }
}
