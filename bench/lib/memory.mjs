import { readFileSync, writeFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Extra resident memory while something runs: RSS is sampled on a timer and at every call to
 * sample(), and on Linux the kernel's own peak (VmHWM, reset first through
 * /proc/self/clear_refs) catches peaks between samples. Extra = peak − RSS at start.
 */

setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc");

/** A full garbage collection, so that one measurement's garbage is not billed to the next. */
export function collectGarbage() {
  collect();
  collect();
}

export function rss() {
  return process.memoryUsage.rss();
}

/** Resets the kernel's peak-RSS counter to the current RSS; false where that is not possible. */
function resetPeak() {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** The kernel's peak RSS since the last reset (bytes), or undefined off Linux. */
function kernelPeak() {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Starts watching; stop() returns { baseline, peak, extra } in bytes. */
export function watchMemory(intervalMs = 2) {
  const kernel = resetPeak();
  const baseline = rss();
  let peak = baseline;
  const sample = () => {
    const now = rss();
    if (now > peak) peak = now;
  };
  // unref: a run that throws before stop() must not keep the process alive.
  const timer = setInterval(sample, intervalMs).unref();
  return {
    sample,
    stop() {
      clearInterval(timer);
      sample();
      const hwm = kernel ? kernelPeak() : undefined;
      if (hwm !== undefined && hwm > peak) peak = hwm;
      return { baseline, peak, extra: Math.max(0, peak - baseline) };
    },
  };
}
