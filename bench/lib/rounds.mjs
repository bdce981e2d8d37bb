import { collectGarbage } from "./memory.mjs";
import { max, median, spread } from "./stats.mjs";

/**
 * Interleaved rounds: each round runs every contender once, in an order rotated from round to
 * round, so that slow phases of a shared machine hit every contender alike and no contender
 * always runs first (or right after another's garbage). Discarded rounds first (one unless
 * `warmUpRounds` says more) warm up the JIT and the files; they are numbered -warmUpRounds to
 * -1, measured rounds 0 up. A contender's run(round) does its own setup (open, warm the page
 * cache) untimed and returns a sample: { ms, extra?, ...anything }.
 */
export async function interleave(rounds, contenders, log = () => {}, warmUpRounds = 1) {
  const samples = new Map(contenders.map((c) => [c.id, []]));
  for (let round = -warmUpRounds; round < rounds; round++) {
    const shift = Math.max(round, 0) % contenders.length;
    const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
    for (const contender of order) {
      collectGarbage();
      const sample = await contender.run(round);
      if (round >= 0) samples.get(contender.id).push(sample);
    }
    log(round < 0 ? "  warm-up round done" : `  round ${round + 1}/${rounds} done`);
  }
  return samples;
}

/** Median time, worst extra memory (the limit must hold every time), and the time's spread. */
export function summarize(samples) {
  const times = samples.map((s) => s.ms);
  const extras = samples.map((s) => s.extra).filter((e) => e !== undefined);
  return {
    ms: median(times),
    extra: extras.length > 0 ? max(extras) : undefined,
    spread: spread(times),
    times,
  };
}

/** Times `fn` (which must do only the work being measured) in milliseconds. */
export async function timed(fn) {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}
