#!/usr/bin/env node
/**
 * loadout's benchmark: `npm run bench` (builds, then runs this), or `node bench/run.js [options]`
 * against an existing build. See docs/benchmarks.md for what each number means and
 * `node bench/run.js --help` for the options.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { converter } from "./lib/convert.mjs";
import { ensureData, SIZES } from "./lib/data.mjs";
import { formatBytes } from "./lib/format.mjs";
import { collectGarbage } from "./lib/memory.mjs";
import { parseOptions, USAGE } from "./lib/options.mjs";
import { markdownReport, printSection } from "./lib/report.mjs";
import { interleave, summarize } from "./lib/rounds.mjs";
import { loadSections } from "./lib/sections.mjs";
import { findTorchPython, startTorch } from "./lib/torch.mjs";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const print = (line = "") => process.stdout.write(`${line}\n`);
const log = (line) => process.stderr.write(`${line}\n`);

async function importLoadout() {
  const entry = join(ROOT, "dist", "node.js");
  if (!existsSync(entry)) {
    throw new Error("dist/node.js is missing: run `npm run build` first (npm run bench does).");
  }
  return import(entry);
}

function machine() {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown CPU",
    totalMemory: totalmem(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Float32Arrays for every big tensor, allocated and touched once and shared by the sections. */
function sharedDestinations(spec) {
  let arrays;
  return () => {
    if (!arrays) {
      const numel = spec.shape.reduce((a, b) => a * b, 1);
      arrays = Array.from({ length: spec.count }, () => new Float32Array(numel).fill(-1));
      collectGarbage();
    }
    return arrays;
  };
}

async function setUpTorch(options) {
  if (!options.torch) return { client: undefined, status: "PyTorch: skipped (--no-torch)" };
  const found = findTorchPython(options.python);
  if (!found.python) {
    return {
      client: undefined,
      status: `PyTorch: not available (tried ${found.tried.join(", ")}); torch rows are left out`,
    };
  }
  const client = await startTorch(found.python, options.torchThreads);
  return {
    client,
    status: `PyTorch ${client.info.torch} (${found.python}, Python ${client.info.python}, ${client.info.threads} intra-op thread${client.info.threads === 1 ? "" : "s"})`,
  };
}

/**
 * glibc raises its mmap threshold after large blocks are freed, and then keeps freed memory for
 * reuse: one measurement's freed buffers would hide the next one's allocations from RSS. Pinning
 * the threshold (for this process and its children) makes every block of 128 KiB or more come
 * from the OS and go back to it when freed, so each measurement's extra RSS is its own.
 */
const PINNED_MMAP_THRESHOLD = "131072";

function rerunWithPinnedAllocator() {
  if (process.platform !== "linux" || process.env.MALLOC_MMAP_THRESHOLD_ !== undefined)
    return false;
  const result = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: PINNED_MMAP_THRESHOLD },
  });
  process.exitCode = result.status ?? 1;
  return true;
}

async function main() {
  if (rerunWithPinnedAllocator()) return;
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    log(`${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const available = await loadSections();
  if (options.help) {
    print(`${USAGE}\n\nsections: ${available.map((s) => s.name).join(", ")}`);
    return;
  }
  const unknown = (options.only ?? []).filter((n) => !available.some((s) => s.name === n));
  if (unknown.length > 0) {
    log(
      `unknown section(s) ${unknown.join(", ")}; sections: ${available.map((s) => s.name).join(", ")}`,
    );
    process.exitCode = 2;
    return;
  }
  const selected = options.only
    ? available.filter((s) => options.only.includes(s.name))
    : available;

  const loadout = await importLoadout();
  const mode = options.quick ? "quick" : "full";
  const dataFolder = join(BENCH, "data", mode);
  const convert = await converter(loadout);
  const datasets = new Map();
  const record = {
    date: new Date().toISOString(),
    machine: machine(),
    options: {
      mode,
      rounds: options.rounds,
      only: options.only ?? null,
      torchThreads: options.torchThreads,
    },
    loadAverage: { start: loadavg(), end: undefined },
    torch: {},
    sections: [],
  };

  print(
    `loadout benchmark (${mode}${mode === "quick" ? ": smoke test, not a measurement" : ""}) — ${record.date}`,
  );
  print(
    `${record.machine.cpus}× ${record.machine.cpuModel}, ${formatBytes(record.machine.totalMemory)} RAM, Node ${record.machine.node}; ${options.rounds} interleaved rounds per measurement, medians`,
  );
  const torch = await setUpTorch(options);
  record.torch = { status: torch.status, ...(torch.client ? torch.client.info : {}) };
  print(torch.status);

  const context = {
    options,
    mode,
    loadout,
    dataFolder,
    sizes: SIZES[mode],
    torch: torch.client,
    log,
    /** Generates the named dataset if needed; resolves { path, size, dataBytes, tensors, describe }. */
    async data(name) {
      if (!datasets.has(name)) {
        const found = await ensureData({
          loadout,
          convert,
          folder: dataFolder,
          mode,
          names: [name],
          log,
        });
        for (const [key, value] of Object.entries(found)) datasets.set(key, value);
      }
      return datasets.get(name);
    },
    destinations: sharedDestinations(SIZES[mode].big),
    interleave: (contenders, warmUpRounds) =>
      interleave(options.rounds, contenders, log, warmUpRounds),
    summarize,
  };

  let failed = false;
  try {
    for (const section of selected) {
      print(`\n== ${section.name}: ${section.title} ==`);
      const started = performance.now();
      try {
        const result = await section.run(context);
        printSection(result, print);
        record.sections.push({ name: section.name, title: section.title, ...result });
      } catch (error) {
        failed = true;
        print(`FAILED: ${error.stack ?? error}`);
        record.sections.push({ name: section.name, title: section.title, error: String(error) });
      }
      log(`  (${section.name} took ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await torch.client?.close();
  }
  record.loadAverage.end = loadavg();

  const targets = record.sections.flatMap((s) =>
    (s.targets ?? []).map((t) => ({ section: s.name, ...t })),
  );
  print("\n== targets ==");
  for (const t of targets)
    print(`${t.pass ? "PASS" : "MISS"}  [${t.section}] ${t.what}: ${t.measured}`);
  print(
    `load average: ${record.loadAverage.start.map((l) => l.toFixed(2)).join(" ")} at start, ${record.loadAverage.end.map((l) => l.toFixed(2)).join(" ")} at end (${record.machine.cpus} CPUs; above that, numbers are noisy)`,
  );

  // Only a full run of every section replaces bench/results.json.
  const suffix = `${mode === "quick" ? ".quick" : ""}${options.only ? ".partial" : ""}`;
  const out = options.out ?? join(BENCH, `results${suffix}.json`);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(record, null, 2)}\n`);
  print(`results: ${relative(process.cwd(), out)}`);
  if (options.markdown) {
    await writeFile(options.markdown, markdownReport(record));
    print(`markdown: ${relative(process.cwd(), options.markdown)}`);
  }
  if (failed) process.exitCode = 1;
}

await main();
