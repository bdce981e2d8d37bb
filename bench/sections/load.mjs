import { open } from "node:fs/promises";
import { bigName } from "../lib/data.mjs";
import { formatBytes, formatPercent } from "../lib/format.mjs";
import { watchMemory } from "../lib/memory.mjs";
import { warmPageCache } from "../lib/page-cache.mjs";
import { plainReadWith, tensorRanges } from "../lib/plain-read.mjs";
import { pairedRatio } from "../lib/stats.mjs";
import { poison, verify } from "../lib/values.mjs";

/**
 * A weights_only load (runLoad) of the float32 file into a MemoryModel whose arrays already
 * exist, in_place and transactional, beside the plain-read ceiling. Times include opening the
 * file, for every contender, because a load does.
 */

export const name = "load";
export const title = "weights_only load into an in-memory model (runLoad)";

const MiB = 1024 * 1024;
const MEMORY_LIMIT = 64 * MiB;
const CEILING_SHARE = 0.8;

export async function run(context) {
  const f32 = await context.data("f32");
  const { loadout, torch } = context;
  const { count, shape } = context.sizes.big;
  const destinations = context.destinations();
  const destinationBytes = destinations.map(
    (d) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
  );
  const names = Array.from({ length: count }, (_, i) => bigName(i));
  const ranges = await (async () => {
    const checkpoint = await loadout.openCheckpointFile(f32.path);
    try {
      const tensors = checkpoint.stateDict().tensors;
      return await tensorRanges(names.map((n) => tensors.get(n)));
    } finally {
      await checkpoint.close();
    }
  })();

  /** A model over the shared destination arrays (taken as its values, not copied). */
  const modelOverDestinations = () =>
    new loadout.MemoryModel(
      names.map((n, i) => ({ name: n, shape, dtype: "float32", value: destinations[i] })),
    );

  const loadWith = (mode) => async () => {
    const config = loadout.resolveLoadingConfig({ type: "weights_only", mode });
    const model = modelOverDestinations();
    poison(destinations);
    await warmPageCache(f32.path);
    const watch = watchMemory();
    const started = performance.now();
    const checkpoint = await loadout.openCheckpointFile(f32.path);
    const { report } = await loadout.runLoad({
      checkpoint,
      targets: { model },
      config,
      onProgress: watch.sample,
    });
    const ms = performance.now() - started;
    const { extra } = watch.stop();
    await checkpoint.close();
    // in_place fills the existing arrays; transactional replaces them with the staged ones.
    const live = names.map((n) => model.liveArray(n));
    verify(live, `runLoad ${mode}`);
    if (mode === "in_place" && live.some((array, i) => array !== destinations[i])) {
      throw new Error("in_place load replaced the model's arrays instead of filling them");
    }
    return { ms, extra, bytesLoaded: report.bytesLoaded };
  };

  const contenders = [
    {
      id: "plain",
      async run() {
        poison(destinations);
        await warmPageCache(f32.path);
        const watch = watchMemory();
        const started = performance.now();
        const handle = await open(f32.path, "r");
        await plainReadWith(handle, ranges, destinationBytes, watch.sample);
        const ms = performance.now() - started;
        const { extra } = watch.stop();
        await handle.close();
        verify(destinations, "plain read");
        return { ms, extra };
      },
    },
    { id: "in_place", run: loadWith("in_place") },
    { id: "transactional", run: loadWith("transactional") },
  ];
  if (torch) {
    contenders.push({
      id: "torch",
      async run() {
        await warmPageCache(f32.path);
        return torch.request({ op: "load_state_dict", path: f32.path, count, shape });
      },
    });
  }
  const samples = await context.interleave(contenders);
  const times = (id) => samples.get(id).map((s) => s.ms);
  const row = (id, contender, note) => {
    const s = context.summarize(samples.get(id));
    return {
      contender,
      ms: s.ms,
      bytes: f32.dataBytes,
      ratio: id === "plain" ? undefined : pairedRatio(times("plain"), times(id)),
      extra: s.extra,
      spread: s.spread,
      times: s.times,
      note,
    };
  };
  const loaded = samples.get("transactional")[0].bytesLoaded;
  const inPlace = row(
    "in_place",
    "loadout runLoad, mode in_place",
    "reads into the model's arrays",
  );
  const transactional = row(
    "transactional",
    "loadout runLoad, mode transactional",
    "", // filled below
  );
  transactional.note = `extra = ${(transactional.extra / loaded).toFixed(2)}× the ${formatBytes(loaded)} loaded (staged copy)`;
  const rows = [
    row("plain", "open + plain positional read (ceiling)", "one FileHandle"),
    inPlace,
    transactional,
  ];
  if (torch) {
    const file = Math.max(...samples.get("torch").map((s) => s.extra_file ?? 0));
    rows.push(
      row(
        "torch",
        "torch.load(mmap) + load_state_dict",
        `${formatBytes(file)} of the extra is mapped file pages`,
      ),
    );
  }
  return {
    tables: [
      { title: `weights_only load of ${f32.describe} (${formatBytes(f32.dataBytes)})`, rows },
    ],
    targets: [
      {
        what: `in_place ≥ ${formatPercent(CEILING_SHARE)} of the plain-read ceiling`,
        measured: formatPercent(inPlace.ratio),
        pass: inPlace.ratio >= CEILING_SHARE,
      },
      {
        what: `in_place extra memory < ${formatBytes(MEMORY_LIMIT)}`,
        measured: formatBytes(inPlace.extra),
        pass: inPlace.extra < MEMORY_LIMIT,
      },
      {
        what: `transactional extra memory ≤ one copy of what it loads (${formatBytes(loaded)}) + ${formatBytes(MEMORY_LIMIT)}`,
        measured: `${formatBytes(transactional.extra)} (${(transactional.extra / loaded).toFixed(2)}×)`,
        pass: transactional.extra <= loaded + MEMORY_LIMIT,
      },
    ],
    notes: [
      "Every time includes opening the file (openCheckpointFile, or the FileHandle for the ceiling); the model's arrays exist before timing starts.",
    ],
  };
}
