/** Medians and ratios over interleaved rounds. */

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function max(values) {
  return values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
}

/**
 * The median over rounds of `ceiling time / contender time`, each pair measured in the same
 * round: drift in the machine's load (it is shared) then cancels out of the ratio.
 */
export function pairedRatio(ceilingTimes, contenderTimes) {
  const ratios = [];
  const rounds = Math.min(ceilingTimes.length, contenderTimes.length);
  for (let r = 0; r < rounds; r++) ratios.push(ceilingTimes[r] / contenderTimes[r]);
  return median(ratios);
}

/** Spread of a series as (max - min) / median, to flag noisy measurements. */
export function spread(values) {
  const m = median(values);
  if (!(m > 0)) return Number.NaN;
  return (Math.max(...values) - Math.min(...values)) / m;
}
