import { basename } from "node:path";
import { formatBytes, formatPercent, formatTime } from "../lib/format.mjs";
import { watchMemory } from "../lib/memory.mjs";
import { warmPageCache } from "../lib/page-cache.mjs";
import { pairedRatio } from "../lib/stats.mjs";

/** Opening: openCheckpointFile + listing every tensor, and how much of the file that reads. */

export const name = "open";
export const title = "Open and index (openCheckpointFile + tensors())";

const OPEN_TARGET_MS = 100;

/**
 * Two discarded rounds, not one. The first opens of the other files take paths V8 had not
 * compiled the 20,000-tensor file's code for, so it throws that code away, and the next open of
 * that file (with one warm-up round, the first measured one) re-optimizes about a dozen
 * functions while it is timed: it ran 100–150 ms where later rounds ran 50–90. The medians are
 * meant to show an open in a warm process; the warm-up opens are shown beside them, the first
 * as what a fresh process pays.
 */
const WARM_UP_ROUNDS = 2;

export async function run(context) {
  const datasets = [
    await context.data("small"),
    await context.data("f32"),
    await context.data("bf16"),
    await context.data("safetensors"),
  ];
  const { loadout, torch } = context;

  /** Each file's warm-up open times, by dataset name, first round first. */
  const warmUps = new Map(datasets.map((dataset) => [dataset.name, []]));
  const contenders = datasets.map((dataset) => ({
    id: `loadout:${dataset.name}`,
    async run(round) {
      await warmPageCache(dataset.path);
      const watch = watchMemory();
      const started = performance.now();
      const checkpoint = await loadout.openCheckpointFile(dataset.path);
      const tensors = checkpoint.tensors().length;
      const ms = performance.now() - started;
      const { extra } = watch.stop();
      const bytesRead = checkpoint.bytesRead;
      await checkpoint.close();
      if (round < 0) warmUps.get(dataset.name).push(ms);
      return { ms, extra, tensors, bytesRead };
    },
  }));
  const torchRuns = [];
  if (torch) {
    const small = datasets[0];
    const big = datasets[1];
    torchRuns.push(
      { dataset: small, mmap: false, label: `torch.load ${basename(small.path)}` },
      { dataset: small, mmap: true, label: `torch.load(mmap=True) ${basename(small.path)}` },
      { dataset: big, mmap: true, label: `torch.load(mmap=True) ${basename(big.path)}` },
    );
    for (const [i, t] of torchRuns.entries()) {
      contenders.push({
        id: `torch:${i}`,
        async run() {
          await warmPageCache(t.dataset.path);
          return torch.request({ op: "open", path: t.dataset.path, mmap: t.mmap });
        },
      });
    }
  }

  const samples = await context.interleave(contenders, WARM_UP_ROUNDS);
  const rows = [];
  const targets = [];
  for (const dataset of datasets) {
    const series = samples.get(`loadout:${dataset.name}`);
    const s = context.summarize(series);
    const { bytesRead, tensors } = series[0];
    rows.push({
      contender: `loadout ${basename(dataset.path)} (${formatBytes(dataset.size)}, ${tensors} tensors)`,
      ms: s.ms,
      extra: s.extra,
      spread: s.spread,
      times: s.times,
      note: `read ${formatBytes(bytesRead)} at open = ${formatPercent(bytesRead / dataset.size)} of the file; warm-up opens ${warmUps.get(dataset.name).map(formatTime).join(", ")}`,
      bytesRead,
      fileSize: dataset.size,
    });
    if (dataset.name === "small") {
      targets.push({
        what: `the ${dataset.tensors.toLocaleString("en-US")}-tensor file opens in < ${OPEN_TARGET_MS} ms`,
        measured: formatTime(s.ms),
        pass: s.ms < OPEN_TARGET_MS,
      });
    }
  }
  for (const [i, t] of torchRuns.entries()) {
    const series = samples.get(`torch:${i}`);
    const s = context.summarize(series);
    const ours = samples.get(`loadout:${t.dataset.name}`).map((x) => x.ms);
    const ratio = pairedRatio(
      series.map((x) => x.ms),
      ours,
    );
    rows.push({
      contender: t.label,
      ms: s.ms,
      extra: s.extra,
      spread: s.spread,
      times: s.times,
      note: `${ratio.toFixed(2)}× loadout's time${t.mmap ? "" : " (torch.load reads the data too)"}`,
    });
  }
  return {
    tables: [{ title: "Opening each file (page cache warm)", rows, ceiling: false }],
    targets,
    notes: [
      "Time covers opening and listing every tensor (data is not read). Bytes read at open come from checkpoint.bytesRead.",
      `Medians after ${WARM_UP_ROUNDS} discarded warm-up rounds; the warm-up opens are in the notes, the first being a fresh process's first open of the file (JIT compilation included).`,
    ],
  };
}
