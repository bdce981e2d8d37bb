/**
 * The atomic writer under SIGKILL: a child process (kill-child.mjs) writes a ~20 MB safetensors
 * file slowly through openAtomicFile + writeSafetensors and is killed at 100 random moments.
 * After every kill the destination must be absent or one of the two complete versions, never
 * partial, and the only things that may be left behind are `.model.safetensors.*.tmp` files.
 *
 * The child is plain JavaScript importing the compiled dist/ (see ensureDist).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSafetensors } from "../../src/formats/safetensors/safetensors.js";
import { MemorySource } from "../../src/io/byte-source.js";
import type { Tensor } from "../../src/tensors/tensor.js";
import { ensureDist } from "../dist.js";

const CHILD = fileURLToPath(new URL("./kill-child.mjs", import.meta.url));
const KILLS = 100;
/** 40 tensors of 512 KiB: 20 MiB of data. */
const TENSORS = 40;
const DELAY_MS = 2;

/** Compiled files the child imports, with the source folders they are built from. */
const OUTPUTS = ["dist/writers/file-sink.js", "dist/writers/safetensors-writer.js"];
const SOURCES = [
  "src/writers",
  "src/tensors",
  "src/formats/safetensors",
  "src/formats/json",
  "src/io",
];

interface ChildRun {
  /** Milliseconds from the child's "ready" (temporary file open) to its exit. */
  writing: number;
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

interface StartedChild {
  /** Lets the child start writing; SIGKILLs it `killAfterMs` after it reports "ready", if given. */
  go(killAfterMs?: number): Promise<ChildRun>;
  /** Ends a child that was never told to go. */
  cancel(): void;
}

/**
 * Spawns the child for `version` and lets Node start up, which takes longer than the write
 * itself: the test starts the next child while the current one writes and is checked. The kill
 * timer runs from "ready" (temporary file open), so kills land while the child writes.
 */
function startChild(destination: string, version: number): StartedChild {
  const child = spawn(
    process.execPath,
    [CHILD, destination, String(version), String(TENSORS), String(DELAY_MS)],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let ready: number | undefined;
  let killAfter: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  child.stdout.on("data", () => {
    if (ready !== undefined) return;
    ready = performance.now();
    if (killAfter !== undefined) timer = setTimeout(() => child.kill("SIGKILL"), killAfter);
  });
  const exited = new Promise<ChildRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const writing = ready === undefined ? 0 : performance.now() - ready;
      resolve({ writing, signal, code, stderr });
    });
  });
  return {
    go(killAfterMs) {
      killAfter = killAfterMs;
      child.stdin.end("go\n");
      return exited;
    },
    cancel() {
      child.kill("SIGKILL");
    },
  };
}

/** A small seeded generator, so a failing run can be repeated from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Checks a complete file of `version` with the reader: metadata, names and every tensor's value. */
async function checkVersion(bytes: Uint8Array, version: number): Promise<void> {
  const opened = await openSafetensors(new MemorySource(bytes, `v${version}`));
  expect(opened.metadata).toEqual({ version: String(version) });
  const root = opened.root as Map<string, Tensor>;
  expect(root.size).toBe(TENSORS);
  for (const [name, tensor] of root) {
    const values = (await tensor.read()) as Float32Array;
    const expected = version * 1000 + Number(name.slice(1));
    expect(values.length).toBe(1 << 17);
    expect(values.every((v) => v === expected)).toBe(true);
  }
}

const equal = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a !== undefined && b !== undefined && Buffer.from(a).equals(Buffer.from(b));

let folder: string;
beforeAll(async () => {
  await ensureDist(OUTPUTS, SOURCES);
  folder = await mkdtemp(join(tmpdir(), "loadout-kill-"));
}, 180_000);
afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe("openAtomicFile under SIGKILL", () => {
  it("leaves the destination absent or complete after 100 kills at random moments", {
    timeout: 180_000,
  }, async () => {
    // The two complete versions, from uninterrupted runs, checked value by value.
    const complete = new Map<number, Uint8Array>();
    let longest = 0;
    for (const version of [1, 2]) {
      const path = join(folder, `complete-${version}.safetensors`);
      const run = await startChild(path, version).go();
      expect(run, run.stderr).toMatchObject({ code: 0, signal: null });
      longest = Math.max(longest, run.writing);
      const bytes = new Uint8Array(await readFile(path));
      expect(bytes.byteLength).toBeGreaterThan(20 << 20);
      await checkVersion(bytes, version);
      complete.set(version, bytes);
      await rm(path);
    }

    const seed = Date.now() >>> 0;
    const random = mulberry32(seed);
    const destination = join(folder, "model.safetensors");
    const strayPattern = /^\.model\.safetensors\.[0-9a-f]{12}\.tmp$/;
    const outcomes = { finished: 0, absent: 0, unchanged: 0, replaced: 0, strayTemp: 0 };
    const versionOf = (kill: number) => (kill % 2) + 1;
    let current: Uint8Array | undefined;
    let next: StartedChild | undefined = startChild(destination, versionOf(0));
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        const version = versionOf(kill);
        const at = `kill ${kill} (seed ${seed})`;
        const child: StartedChild = next!;
        next = kill + 1 < KILLS ? startChild(destination, versionOf(kill + 1)) : undefined;
        // From the first byte written to past the end of an uncontended run (the next child
        // starting up slows this one down), so some runs finish and replace the file.
        const run = await child.go(random() * longest * 1.5);
        // Killed, or finished first: never failed on its own.
        expect(run.signal === "SIGKILL" || run.code === 0, `${at}: ${run.stderr}`).toBe(true);
        if (run.code === 0) outcomes.finished++;

        const after = existsSync(destination)
          ? new Uint8Array(await readFile(destination))
          : undefined;
        if (after === undefined) {
          expect(current, `${at}: destination vanished`).toBeUndefined();
          outcomes.absent++;
        } else {
          const previous = equal(after, current);
          const replaced = equal(after, complete.get(version));
          expect(previous || replaced, `${at}: destination is neither version`).toBe(true);
          // Byte-equal to a version checked above; it must open as safetensors too.
          await openSafetensors(new MemorySource(after, destination));
          outcomes[previous ? "unchanged" : "replaced"]++;
        }
        current = after;

        for (const name of await readdir(folder)) {
          if (name === "model.safetensors") continue;
          expect(name, at).toMatch(strayPattern);
          await rm(join(folder, name));
          outcomes.strayTemp++;
        }
      }
    } finally {
      next?.cancel();
    }
    // How the kills fell depends on timing, so it is shown on request, never asserted.
    if (process.env.LOADOUT_KILL_TEST_VERBOSE) console.info({ seed, longest, outcomes });
  });
});
