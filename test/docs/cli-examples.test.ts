/**
 * Every console example of the pages in docs/strategies/, docs/inspect.md, docs/safety.md and
 * docs/library.md is run, in order, from a stand-in for the repository root, and what it prints
 * must be exactly what the page shows (trailing newlines aside). A command followed by
 * `echo $?` must exit with the code shown; any other command must exit with 0, unless what it
 * prints is an error (`loadout: ...`), which must then be a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CORPORA, corporaPresent, createWorkspace, type Workspace } from "./console.js";
import {
  codeBlocks,
  consoleSteps,
  ownedPages,
  readPage,
  withoutTrailingNewlines,
} from "./markdown.js";

const pages = ownedPages();

describe("docs console examples", () => {
  it("covers every page, and every page but library.md has examples", () => {
    expect(pages).toEqual([
      "strategies/cold_start.md",
      "strategies/transfer_learning.md",
      "strategies/warm_start.md",
      "strategies/weights_only.md",
      "inspect.md",
      "safety.md",
      "library.md",
    ]);
    for (const page of pages.filter((p) => p !== "library.md")) {
      const steps = codeBlocks(readPage(page))
        .filter((b) => b.lang === "console")
        .flatMap((b) => consoleSteps(b.body));
      expect(steps.length, page).toBeGreaterThan(2);
    }
  });

  for (const page of pages) {
    describe(page, () => {
      let workspace: Workspace;
      beforeAll(async () => {
        workspace = await createWorkspace();
      });
      afterAll(async () => {
        await workspace.dispose();
      });

      it("shows what each command prints, with its exit code", async () => {
        const blocks = codeBlocks(readPage(page)).filter((b) => b.lang === "console");
        for (const block of blocks) {
          const steps = consoleSteps(block.body);
          expect(steps.length, `empty console block at line ${block.line}`).toBeGreaterThan(0);
          let skipped = false;
          for (const [index, step] of steps.entries()) {
            const where = `${page}:${block.line}: ${step.command}`;
            // Without the corpora (outside this repository's CI), their examples cannot run.
            if (step.command.includes("../shared/corpora/") && !corporaPresent) {
              console.warn(`SKIPPED ${where}: outside corpora not found at ${CORPORA}`);
              skipped = true;
              continue;
            }
            if (skipped && step.command === "echo $?") continue;
            skipped = false;
            const result = await workspace.run(step);
            expect(withoutTrailingNewlines(result.output), where).toBe(step.output);
            if (step.words[0] !== "loadout") continue;
            const next = steps[index + 1];
            if (next?.command === "echo $?") {
              expect(`${result.code}`, where).toBe(next.output);
            } else if (/^loadout: (?!warning:)/.test(step.output)) {
              expect(result.code, `${where} prints an error`).not.toBe(0);
            } else {
              expect(result.code, where).toBe(0);
            }
          }
        }
      });
    });
  }
});
