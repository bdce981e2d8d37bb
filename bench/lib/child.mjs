import { spawn } from "node:child_process";

/** Runs a command to completion; resolves { ms (wall, spawn to exit), stdout } or rejects with its stderr. */
export function runChild(command, args) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (t) => {
      stdout += t;
    });
    child.stderr.setEncoding("utf8").on("data", (t) => {
      stderr += t;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ ms, stdout });
      else
        reject(new Error(`${command} ${args.join(" ")}: ${signal ?? `exit ${code}`}\n${stderr}`));
    });
  });
}
