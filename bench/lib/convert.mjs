import { stat } from "node:fs/promises";

/**
 * Conversion between formats the way `loadout convert IN OUT` does it: runConvertCommand from
 * the CLI's convert command (dist/cli/convert-command.js), which opens the source lazily and
 * streams its state dict into an atomic file, one chunk in memory at a time. Builds without that
 * command fall back to the writers it uses (writeSafetensors / writeTorchCheckpoint into
 * openAtomicFile).
 */

const CONVERT_COMMAND = new URL("../../dist/cli/convert-command.js", import.meta.url);

async function cliConverter() {
  const module = await import(CONVERT_COMMAND.href).catch(() => undefined);
  if (typeof module?.runConvertCommand !== "function") return undefined;
  const run = async (input, output, format) => {
    const warnings = [];
    await module.runConvertCommand(input, output, { format }, (line) => warnings.push(line));
    if (warnings.length > 0) throw new Error(`convert warned: ${warnings.join("; ")}`);
    return (await stat(output)).size;
  };
  return {
    via: "runConvertCommand (src/cli/convert-command.ts)",
    toSafetensors: (input, output) => run(input, output, "safetensors"),
    toTorch: (input, output) => run(input, output, "torch"),
  };
}

function writerConverter(loadout) {
  async function withStateDict(path, write) {
    const checkpoint = await loadout.openCheckpointFile(path);
    try {
      const stateDict = checkpoint.stateDict();
      if (!stateDict) throw new Error(`${path}: no model state dict to convert`);
      return await write(stateDict.tensors);
    } finally {
      await checkpoint.close();
    }
  }
  return {
    via: "writeSafetensors / writeTorchCheckpoint + openAtomicFile",
    toSafetensors: (input, output) =>
      withStateDict(input, async (tensors) => {
        const sink = await loadout.openAtomicFile(output);
        const result = await loadout.writeSafetensors(sink, tensors, {
          metadata: { format: "pt" },
        });
        return result.bytes;
      }),
    toTorch: (input, output) =>
      withStateDict(input, async (tensors) => {
        const sink = await loadout.openAtomicFile(output);
        const result = await loadout.writeTorchCheckpoint(sink, loadout.pyOrderedDict(tensors));
        return result.bytes;
      }),
  };
}

/** { via, toSafetensors(input, output), toTorch(input, output) }; each resolves the bytes written. */
export async function converter(loadout) {
  return (await cliConverter()) ?? writerConverter(loadout);
}
