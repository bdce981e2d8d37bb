import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runCli } from "../cli/run-cli.js";
import { type ConsoleStep, REPO } from "./markdown.js";

/**
 * Runs the docs' console examples as a reader would, from the repository root: `loadout` is the
 * CLI's `main` run in this process; `echo $?`, `cat FILE` and `mkdir -p DIR` do what the shell
 * does. Each page gets a fresh copy of the root (symlinks to test/ and configs/, and ../shared
 * beside it when the outside corpora are present), so outputs go to a temp dir.
 */

export const CORPORA = resolve(REPO, "../shared/corpora");
export const corporaPresent = existsSync(join(CORPORA, "EXPECT.tsv"));

export interface StepResult {
  code: number;
  /** What a terminal shows: stderr, then stdout. */
  output: string;
}

export interface Workspace {
  /** The stand-in for the repository root, where commands run. */
  root: string;
  run(step: ConsoleStep): Promise<StepResult>;
  dispose(): Promise<void>;
}

async function runLoadout(args: string[]): Promise<StepResult> {
  const { code, stdout, stderr } = await runCli(args);
  return { code, output: `${stderr}${stdout}` };
}

export async function createWorkspace(): Promise<Workspace> {
  const base = await mkdtemp(join(tmpdir(), "loadout-docs-"));
  const root = join(base, "main");
  await mkdir(root);
  await symlink(join(REPO, "test"), join(root, "test"));
  await symlink(join(REPO, "configs"), join(root, "configs"));
  if (corporaPresent) await symlink(resolve(CORPORA, ".."), join(base, "shared"));
  let lastCode = 0;

  async function run(step: ConsoleStep): Promise<StepResult> {
    const [program, ...args] = step.words;
    if (program === "loadout") {
      const cwd = process.cwd();
      process.chdir(root);
      try {
        const result = await runLoadout(args);
        lastCode = result.code;
        return result;
      } finally {
        process.chdir(cwd);
      }
    }
    if (program === "echo" && args.length === 1 && args[0] === "$?") {
      return { code: 0, output: `${lastCode}\n` };
    }
    if (program === "cat" && args.length === 1) {
      return { code: 0, output: await readFile(join(root, args[0]!), "utf8") };
    }
    if (program === "mkdir" && args.length === 2 && args[0] === "-p") {
      await mkdir(join(root, args[1]!), { recursive: true });
      return { code: 0, output: "" };
    }
    throw new Error(`the docs runner does not know \`${step.command}\``);
  }

  return {
    root,
    run,
    dispose: () => rm(base, { recursive: true, force: true }),
  };
}
