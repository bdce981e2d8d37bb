/**
 * One conversion in a process of its own, so that its peak memory can be read cleanly:
 *   node bench/workers/convert.mjs <to-safetensors|to-torch> <input> <output>
 * Prints one JSON line: { ms, bytes, baselineRss, maxRss, extra }. `extra` is the process's peak
 * RSS (process.resourceUsage().maxRSS) minus its RSS just before converting: an upper bound on
 * what the conversion added, since the peak may also date from start-up.
 */
import * as loadout from "../../dist/node.js";
import { converter } from "../lib/convert.mjs";

const [direction, input, output] = process.argv.slice(2);
const convert = await converter(loadout);
const run = { "to-safetensors": convert.toSafetensors, "to-torch": convert.toTorch }[direction];
if (!run || !input || !output) {
  process.stderr.write("usage: convert.mjs <to-safetensors|to-torch> <input> <output>\n");
  process.exit(2);
}
const baselineRss = process.memoryUsage.rss();
const started = performance.now();
const bytes = await run(input, output);
const ms = performance.now() - started;
const maxRss = process.resourceUsage().maxRSS * 1024;
process.stdout.write(
  `${JSON.stringify({ ms, bytes, baselineRss, maxRss, extra: Math.max(0, maxRss - baselineRss), via: convert.via })}\n`,
);
