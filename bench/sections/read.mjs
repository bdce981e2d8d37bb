import { open } from "node:fs/promises";
import { bigName } from "../lib/data.mjs";
import { formatBytes, formatPercent } from "../lib/format.mjs";
import { watchMemory } from "../lib/memory.mjs";
import { warmPageCache } from "../lib/page-cache.mjs";
import { plainReadWith, tensorRanges } from "../lib/plain-read.mjs";
import { pairedRatio } from "../lib/stats.mjs";
import { poison, poisonRaw16, verify, verifyRaw16 } from "../lib/values.mjs";

/**
 * Reading every tensor of the big files into float32 arrays allocated beforehand, beside the
 * plain-read ceiling of the same byte ranges, and the extra memory while reading (the
 * destinations are allocated and touched before the baseline RSS is taken).
 */

export const name = "read";
export const title = "readInto throughput and memory";

const MiB = 1024 * 1024;
const MEMORY_LIMIT = 64 * MiB;
const CEILING_SHARE = 0.8;

/** The file's tensors in name order (layers.0.weight, layers.1.weight, ...). */
function tensorsOf(checkpoint, count) {
  const tensors = checkpoint.stateDict().tensors;
  return Array.from({ length: count }, (_, i) => {
    const tensor = tensors.get(bigName(i));
    if (!tensor) throw new Error(`${checkpoint.name}: no ${bigName(i)}`);
    return tensor;
  });
}

export async function run(context) {
  const f32 = await context.data("f32");
  const bf16 = await context.data("bf16");
  const { loadout, torch } = context;
  const { count, shape } = context.sizes.big;
  const destinations = context.destinations();
  // The ceiling for bf16 reads the raw 2-byte elements into the first half of each destination.
  const rawViews = destinations.map((d) => new Uint16Array(d.buffer, d.byteOffset, d.length));
  const rawBytes = rawViews.map((d) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  const destinationBytes = destinations.map(
    (d) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
  );

  const rangesOf = async (path) => {
    const checkpoint = await loadout.openCheckpointFile(path);
    try {
      return await tensorRanges(tensorsOf(checkpoint, count));
    } finally {
      await checkpoint.close();
    }
  };
  const ranges = { f32: await rangesOf(f32.path), bf16: await rangesOf(bf16.path) };

  const readWithLoadout = (dataset, label) => async () => {
    const checkpoint = await loadout.openCheckpointFile(dataset.path);
    const tensors = tensorsOf(checkpoint, count);
    poison(destinations);
    await warmPageCache(dataset.path);
    const watch = watchMemory();
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      await tensors[i].readInto(destinations[i], { dtype: "float32" });
      watch.sample();
    }
    const ms = performance.now() - started;
    const { extra } = watch.stop();
    await checkpoint.close();
    verify(destinations, label);
    return { ms, extra };
  };

  const readPlain = (dataset, views, poisonIt, verifyIt, label) => async () => {
    const handle = await open(dataset.path, "r");
    poisonIt();
    await warmPageCache(dataset.path);
    const watch = watchMemory();
    const started = performance.now();
    await plainReadWith(handle, ranges[dataset.name], views, watch.sample);
    const ms = performance.now() - started;
    const { extra } = watch.stop();
    await handle.close();
    verifyIt(label);
    return { ms, extra };
  };

  const names = Array.from({ length: count }, (_, i) => bigName(i));
  const readWithTorch = (dataset) => async () => {
    await warmPageCache(dataset.path);
    return torch.request({ op: "read_into", path: dataset.path, names, count, shape });
  };

  const contenders = [
    { id: "f32:loadout", run: readWithLoadout(f32, "loadout readInto f32") },
    {
      id: "f32:plain",
      run: readPlain(
        f32,
        destinationBytes,
        () => poison(destinations),
        (label) => verify(destinations, label),
        "plain read f32",
      ),
    },
    { id: "bf16:loadout", run: readWithLoadout(bf16, "loadout readInto bf16→f32") },
    {
      id: "bf16:plain",
      run: readPlain(
        bf16,
        rawBytes,
        () => poisonRaw16(rawViews),
        (label) => verifyRaw16(rawViews, label),
        "plain read bf16",
      ),
    },
  ];
  if (torch) {
    contenders.push(
      { id: "f32:torch", run: readWithTorch(f32) },
      { id: "bf16:torch", run: readWithTorch(bf16) },
    );
  }
  const samples = await context.interleave(contenders);
  const times = (id) => samples.get(id).map((s) => s.ms);
  const row = (id, contender, bytes, ceilingId, note) => {
    const s = context.summarize(samples.get(id));
    return {
      contender,
      ms: s.ms,
      bytes,
      ratio: ceilingId ? pairedRatio(times(ceilingId), times(id)) : undefined,
      extra: s.extra,
      spread: s.spread,
      times: s.times,
      note,
    };
  };
  const torchNote = (id) => {
    const first = samples.get(id);
    const loadMs = first.map((s) => s.load_ms).sort((a, b) => a - b)[first.length >> 1];
    const file = Math.max(...first.map((s) => s.extra_file ?? 0));
    return `incl. torch.load(mmap) ${loadMs.toFixed(1)} ms; ${formatBytes(file)} of the extra is mapped file pages`;
  };

  const f32Rows = [
    row("f32:plain", "plain positional read (ceiling)", f32.dataBytes, undefined, "one FileHandle"),
    row("f32:loadout", "loadout readInto", f32.dataBytes, "f32:plain", "opened beforehand"),
  ];
  const bf16Rows = [
    row(
      "bf16:plain",
      "plain positional read of the bf16 bytes (ceiling)",
      bf16.dataBytes,
      undefined,
      `${formatBytes(bf16.dataBytes)} of raw bf16, no conversion`,
    ),
    row(
      "bf16:loadout",
      "loadout readInto {dtype: float32}",
      f32.dataBytes,
      "bf16:plain",
      "throughput in float32 output bytes",
    ),
  ];
  if (torch) {
    f32Rows.push(
      row(
        "f32:torch",
        "torch.load(mmap) + copy_",
        f32.dataBytes,
        "f32:plain",
        torchNote("f32:torch"),
      ),
    );
    bf16Rows.push(
      row(
        "bf16:torch",
        "torch.load(mmap) + copy_ (to float32)",
        f32.dataBytes,
        "bf16:plain",
        torchNote("bf16:torch"),
      ),
    );
  }

  const ours = f32Rows[1];
  const converted = bf16Rows[1];
  return {
    tables: [
      {
        title: `float32 → float32: ${f32.describe} (${formatBytes(f32.dataBytes)})`,
        rows: f32Rows,
      },
      {
        title: `bfloat16 → float32: ${bf16.describe} (${formatBytes(bf16.dataBytes)} in, ${formatBytes(f32.dataBytes)} out)`,
        rows: bf16Rows,
      },
    ],
    targets: [
      {
        what: `readInto float32 ≥ ${formatPercent(CEILING_SHARE)} of the plain-read ceiling`,
        measured: formatPercent(ours.ratio),
        pass: ours.ratio >= CEILING_SHARE,
      },
      {
        what: `extra memory while reading float32 < ${formatBytes(MEMORY_LIMIT)}`,
        measured: formatBytes(ours.extra),
        pass: ours.extra < MEMORY_LIMIT,
      },
      {
        what: `extra memory while converting bf16 → float32 < ${formatBytes(MEMORY_LIMIT)}`,
        measured: formatBytes(converted.extra),
        pass: converted.extra < MEMORY_LIMIT,
      },
    ],
    notes: [
      "Destinations: one Float32Array per tensor, allocated and touched before the baseline RSS; every contender reads into the same arrays, and the values are checked after each run.",
      "Extra memory: peak RSS during the reads minus RSS before (sampled after every tensor and every 2 ms, plus the kernel's peak counter).",
    ],
  };
}
