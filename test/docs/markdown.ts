import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/** Reading the docs pages: fenced blocks, console examples, and the text around them. */

export const REPO = join(import.meta.dirname, "../..");
export const DOCS = join(REPO, "docs");

/** A fenced code block: its info string's first word, its body, and the prose just before it. */
export interface CodeBlock {
  lang: string;
  body: string;
  /** The text between the previous block (or the page's start) and this one. */
  before: string;
  /** 1-based line of the opening fence, for failure messages. */
  line: number;
}

export function readPage(name: string): string {
  return readFileSync(join(DOCS, name), "utf8");
}

/** The pages this suite keeps true, relative to docs/. */
export function ownedPages(): string[] {
  const strategies = readdirSync(join(DOCS, "strategies"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `strategies/${name}`);
  return [...strategies, "inspect.md", "safety.md", "library.md"];
}

/** Fenced blocks of a markdown text, in order (a body keeps no trailing newline). */
export function codeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let previousEnd = 0;
  for (const match of markdown.matchAll(/^```(\S*)[^\n]*\n([\s\S]*?)^```$/gm)) {
    const start = match.index;
    blocks.push({
      lang: match[1]!,
      body: match[2]!.replace(/\n$/, ""),
      before: markdown.slice(previousEnd, start),
      line: markdown.slice(0, start).split("\n").length,
    });
    previousEnd = start + match[0].length;
  }
  return blocks;
}

/** One `$ command` of a console block and the output shown under it. */
export interface ConsoleStep {
  command: string;
  /** Shell words: spaces separate, single quotes group. */
  words: string[];
  output: string;
}

/** Strips the trailing newlines (and only those): the one normalisation allowed. */
export function withoutTrailingNewlines(text: string): string {
  return text.replace(/\n+$/, "");
}

export function shellWords(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** The steps of a console block, in order. */
export function consoleSteps(body: string): ConsoleStep[] {
  return body
    .split(/^\$ /m)
    .slice(1)
    .map((part) => {
      const [command, ...output] = part.split("\n");
      return {
        command: command!,
        words: shellWords(command!),
        output: withoutTrailingNewlines(output.join("\n")),
      };
    });
}

/** Every snippet file's documented region: the lines between `// doc:start` and `// doc:end`. */
export function snippetRegions(): Map<string, string> {
  const folder = join(import.meta.dirname, "snippets");
  const regions = new Map<string, string>();
  for (const name of readdirSync(folder).filter((n) => n.endsWith(".ts"))) {
    const text = readFileSync(join(folder, name), "utf8");
    const match = /^\/\/ doc:start\n([\s\S]*?)^\/\/ doc:end$/m.exec(text);
    if (match) regions.set(relative(REPO, join(folder, name)), match[1]!.replace(/\n$/, ""));
  }
  return regions;
}

/** Rows of a markdown table whose first cell is code (`| \`name\` | ...`), as trimmed cells. */
export function tableRows(markdown: string): string[][] {
  return markdown
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) =>
      line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((cell) => cell.trim().replaceAll("\\|", "|")),
    );
}

/** The text of a `## ` or `### ` section up to the next heading of the same or higher level. */
export function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no section '${heading}'`);
  const level = heading.split(" ")[0]!;
  const rest = markdown.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`^#{1,${level.length}} `, "m"));
  return next < 0 ? rest : rest.slice(0, next);
}

/** The code spans (`...`) of a text. */
export function codeSpans(text: string): string[] {
  return [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}
