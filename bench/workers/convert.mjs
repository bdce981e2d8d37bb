/**
 * One conversion in a process of its own, so that its peak memory can be read cleanly:
 *   node bench/workers/convert.mjs <to-safetensors|to-torch> <input> <output>
 * Prints one JSON line: { ms, bytes, baselineRss, peakRss, extra, maxRss, via }.
 *
 * The peak is the kernel's VmHWM for this process, reset (through /proc/self/clear_refs) just
 * before converting; extra = peak − RSS at that moment. process.resourceUsage().maxRSS is
 * reported too but not used where VmHWM is available: on Linux a child's maxRSS starts from its
 * parent's peak at fork time (run.js holds 1 GiB of arrays), so it says nothing about the child.
 * Without /proc, extra falls back to maxRSS − RSS at start (an upper bound).
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as loadout from "../../dist/node.js";
import { converter } from "../lib/convert.mjs";

function kernelPeak() {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    return undefined;
  }
  return () => {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  };
}

const [direction, input, output] = process.argv.slice(2);
const convert = await converter(loadout);
const run = { "to-safetensors": convert.toSafetensors, "to-torch": convert.toTorch }[direction];
if (!run || !input || !output) {
  process.stderr.write("usage: convert.mjs <to-safetensors|to-torch> <input> <output>\n");
  process.exit(2);
}
const readPeak = kernelPeak();
const baselineRss = process.memoryUsage.rss();
const started = performance.now();
const bytes = await run(input, output);
const ms = performance.now() - started;
const maxRss = process.resourceUsage().maxRSS * 1024;
const peakRss = readPeak?.() ?? maxRss;
const extra = Math.max(0, peakRss - baselineRss);
process.stdout.write(
  `${JSON.stringify({ ms, bytes, baselineRss, peakRss, extra, maxRss, via: convert.via })}\n`,
);
