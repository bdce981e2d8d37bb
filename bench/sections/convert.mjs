import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runChild } from "../lib/child.mjs";
import { bigName } from "../lib/data.mjs";
import { formatBytes, formatPercent, formatTime } from "../lib/format.mjs";
import { warmPageCache } from "../lib/page-cache.mjs";
import { median, pairedRatio } from "../lib/stats.mjs";
import { valueAt } from "../lib/values.mjs";

/**
 * Converting the 1 GiB float32 checkpoint torch → safetensors and back, each conversion in a
 * child process (so its peak RSS is its own), beside `cp` of the same file. The writers fsync
 * before renaming the file into place; `cp` does not, so `cp` followed by `sync <file>` is the
 * like-for-like ceiling, and plain `cp` is shown too.
 */

export const name = "convert";
export const title = "convert torch ⇄ safetensors";

const MiB = 1024 * 1024;
const MEMORY_LIMIT = 64 * MiB;
const CP_SHARE = 0.5;
const WORKER = fileURLToPath(new URL("../workers/convert.mjs", import.meta.url));

/** Opens a converted file and checks its tensor count and the first and last tensors' values. */
async function checkOutput(loadout, path, count) {
  const checkpoint = await loadout.openCheckpointFile(path);
  try {
    const tensors = checkpoint.stateDict()?.tensors;
    if (tensors?.size !== count)
      throw new Error(`${path}: ${tensors?.size} tensors, expected ${count}`);
    for (const i of [0, count - 1]) {
      const values = await tensors.get(bigName(i)).read();
      for (const j of [0, values.length >> 1, values.length - 1]) {
        if (values[j] !== valueAt(i, j)) throw new Error(`${path}: ${bigName(i)}[${j}] is wrong`);
      }
    }
  } finally {
    await checkpoint.close();
  }
}

export async function run(context) {
  const torchFile = await context.data("f32");
  const safetensorsFile = await context.data("safetensors");
  const { loadout } = context;
  const { count } = context.sizes.big;
  const out = join(context.dataFolder, "convert-out");
  await mkdir(out, { recursive: true });

  const convert = (direction, input, output) => async () => {
    await warmPageCache(input.path);
    const target = join(out, output);
    try {
      const { ms: wallMs, stdout } = await runChild(process.execPath, [
        WORKER,
        direction,
        input.path,
        target,
      ]);
      const result = JSON.parse(stdout.trim().split("\n").pop());
      await checkOutput(loadout, target, count);
      return { ...result, wallMs };
    } finally {
      await rm(target, { force: true });
    }
  };

  const copy = async () => {
    await warmPageCache(torchFile.path);
    const target = join(out, "copy.pt");
    try {
      const cp = await runChild("cp", [torchFile.path, target]);
      const sync = await runChild("sync", [target]);
      return { ms: cp.ms, syncedMs: cp.ms + sync.ms };
    } finally {
      await rm(target, { force: true });
    }
  };

  const contenders = [
    { id: "cp", run: copy },
    {
      id: "to-safetensors",
      run: convert("to-safetensors", torchFile, "converted.safetensors"),
    },
    { id: "to-torch", run: convert("to-torch", safetensorsFile, "converted.pt") },
  ];
  const samples = await context.interleave(contenders);
  const cp = samples.get("cp");
  const cpTimes = cp.map((s) => s.ms);
  const cpSynced = cp.map((s) => s.syncedMs);
  const bytes = torchFile.size;
  const row = (id, contender) => {
    const series = samples.get(id);
    const s = context.summarize(series);
    const times = series.map((x) => x.ms);
    return {
      contender,
      ms: s.ms,
      bytes,
      ratio: pairedRatio(cpSynced, times),
      extra: s.extra,
      spread: s.spread,
      times: s.times,
      note: `${formatPercent(pairedRatio(cpTimes, times))} of plain cp; ${formatTime(median(series.map((x) => x.wallMs)))} with node start-up`,
    };
  };
  const toSafetensors = row("to-safetensors", "loadout torch → safetensors");
  const toTorch = row("to-torch", "loadout safetensors → torch");
  const rows = [
    {
      contender: "cp (no fsync)",
      ms: median(cpTimes),
      bytes,
      times: cpTimes,
      note: "data may still be in the page cache only",
    },
    {
      contender: "cp + sync <file> (ceiling)",
      ms: median(cpSynced),
      bytes,
      times: cpSynced,
      note: "same durability as the atomic writer",
    },
    toSafetensors,
    toTorch,
  ];
  const targets = [];
  for (const r of [toSafetensors, toTorch]) {
    targets.push(
      {
        what: `${r.contender.replace("loadout ", "")} ≥ ${formatPercent(CP_SHARE)} of cp (+ sync)`,
        measured: formatPercent(r.ratio),
        pass: r.ratio >= CP_SHARE,
      },
      {
        what: `${r.contender.replace("loadout ", "")} extra memory < ${formatBytes(MEMORY_LIMIT)}`,
        measured: formatBytes(r.extra),
        pass: r.extra < MEMORY_LIMIT,
      },
    );
  }
  return {
    tables: [
      {
        title: `${formatBytes(bytes)} file: ${torchFile.describe}; conversions in child processes`,
        rows,
      },
    ],
    targets,
    notes: [
      `Conversions call ${samples.get("to-torch")[0].via}, as \`loadout convert\` does.`,
      "Conversion time is measured inside the child, from opening the source to the output renamed into place (fsync included); the note adds node's start-up.",
      "Extra memory: the child's peak RSS (its kernel VmHWM, reset before converting) minus its RSS before converting.",
      "Each output is opened and spot-checked, then deleted.",
    ],
  };
}
