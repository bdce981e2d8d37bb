import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfigText } from "../../src/config/load.js";
import { migrateLegacyConfig } from "../../src/config/migrate.js";
import { resolveLoadingConfig } from "../../src/config/resolve.js";

/** The docs promise behaviour; these tests keep the promises and the code together. */

const docs = join(import.meta.dirname, "../../docs");
const read = (name: string) => readFileSync(join(docs, name), "utf8");

/** Fenced code blocks of a markdown text, in order. */
function codeBlocks(markdown: string): { lang: string; body: string }[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({
    lang: m[1]!,
    body: m[2]!.replace(/\n$/, ""),
  }));
}

/** The text of a `## ` or `### ` section up to the next heading of the same or higher level. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`${heading}\n`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const level = heading.split(" ")[0]!;
  const rest = markdown.slice(start + heading.length + 1);
  const next = rest.search(new RegExp(`^#{1,${level.length}} `, "m"));
  return next < 0 ? rest : rest.slice(0, next);
}

describe("docs/migration.md", () => {
  const text = read("migration.md");
  const examples = text.split(/^### Example: /m).slice(1);

  it("has worked examples", () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
  });

  for (const example of examples) {
    const title = example.split("\n")[0]!;
    it(`example "${title}" migrates as shown, with the warnings shown`, () => {
      const [before, after, warnings] = codeBlocks(example);
      expect([before?.lang, after?.lang, warnings?.lang]).toEqual(["yaml", "yaml", "text"]);
      const migrated = migrateLegacyConfig(parse(before!.body));
      expect(migrated.doc).toEqual(parse(after!.body));
      expect(migrated.warnings.join("\n\n")).toBe(warnings!.body);
    });
  }

  it("the conflict shown is the error loadout raises", () => {
    const [shown] = codeBlocks(section(text, "## Conflicts"));
    expect(() =>
      parseConfigText(
        "training: {load_weights_only: true}\ncheckpoint: {loading: {type: warm_start}}\n",
        {
          file: "run.yaml",
        },
      ),
    ).toThrow(shown!.body);
  });
});

describe("docs/configuration.md", () => {
  const text = read("configuration.md");

  it("the error example is what loadout reports", () => {
    const [shown] = codeBlocks(section(text, "## Errors"));
    let message = "";
    try {
      parseConfigText("checkpoint:\n  loading:\n    type: warm_strat\n    skip_mismatch: true\n", {
        file: "configs/run.yaml",
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe(shown!.body);
  });

  it("the defaults table is what resolution gives", () => {
    const rows = section(text, "## Defaults per strategy")
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .map((line) =>
        line
          .split("|")
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    const columns: [string, string][] = [
      ["weights_only", "weights_only"],
      ["transfer_learning", "transfer_learning"],
      ["warm_start", "warm_start"],
      ["cold_start", "cold_start"],
      ["custom", "my_strategy"],
    ];
    expect(rows.length).toBeGreaterThanOrEqual(7);
    columns.forEach(([, type], index) => {
      const config = resolveLoadingConfig(
        { type },
        { knownTypes: ["my_strategy"] },
      ) as unknown as Record<string, unknown>;
      for (const row of rows) {
        const cell = row[index + 1]!;
        for (const option of row[0]!.match(/`(\w+)`/g)!.map((o) => o.slice(1, -1))) {
          const shown = cell === "—" ? [] : parse(cell);
          expect(config[option], `${option} for ${type}`).toEqual(shown);
        }
      }
    });
  });
});
