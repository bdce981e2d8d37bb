import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/**
 * The PyTorch contenders: bench/torch_bench.py served from one long-lived Python process, so each
 * round asks it for one measurement between loadout's own (interleaved, same page cache).
 */

const SCRIPT = fileURLToPath(new URL("../torch_bench.py", import.meta.url));
const CANDIDATES = ["/tmp/tv/bin/python", "python3"];

/** The first Python that imports torch, or { python: undefined, tried } when none does. */
export function findTorchPython(preferred) {
  const tried = [];
  for (const python of preferred ? [preferred] : CANDIDATES) {
    const probe = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], {
      encoding: "utf8",
      timeout: 120_000,
    });
    if (probe.status === 0) return { python, version: probe.stdout.trim(), tried };
    const why = probe.error
      ? probe.error.code
      : (probe.stderr.trim().split("\n").pop() ?? `exit ${probe.status}`);
    tried.push(`${python} (${why})`);
  }
  return { python: undefined, tried };
}

/**
 * Starts the served script with `threads` intra-op threads (0: torch's default); returns
 * { info, request(op), close() }.
 */
export async function startTorch(python, threads) {
  const child = spawn(python, ["-u", SCRIPT, "--serve", "--threads", String(threads)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => {
    stderr = (stderr + text).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.once("close", resolve));

  async function request(op) {
    child.stdin.write(`${JSON.stringify(op)}\n`);
    const next = await Promise.race([lines.next(), exited.then(() => ({ done: true }))]);
    if (next.done) throw new Error(`torch_bench.py exited: ${stderr.trim() || "no output"}`);
    const answer = JSON.parse(next.value);
    if (!answer.ok) throw new Error(`torch_bench.py ${op.op}: ${answer.error}`);
    return answer;
  }

  const info = await request({ op: "hello" });
  return {
    info,
    request,
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}
