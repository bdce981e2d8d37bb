// TEMPORARY authoring helper: fills console outputs and snippets of the pages named in FILL. Deleted before reporting.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { it, vi } from "vitest";
import { createWorkspace } from "./console.js";
import { consoleSteps, DOCS, REPO } from "./markdown.js";

async function runSnippet(file: string, root: string): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  });
  const cwd = process.cwd();
  process.chdir(root);
  try {
    await import(`${pathToFileURL(join(REPO, file)).href}?t=${Date.now()}`);
  } finally {
    process.chdir(cwd);
    spy.mockRestore();
  }
  return lines.join("\n");
}

it("fills", async () => {
  for (const page of (process.env.FILL ?? "").split(",").filter(Boolean)) {
    const path = join(DOCS, page);
    let text = readFileSync(path, "utf8");
    const ws = await createWorkspace();
    let result = "";
    let last = 0;
    for (const m of text.matchAll(/^```console\n([\s\S]*?)^```$/gm)) {
      result += text.slice(last, m.index);
      const steps = consoleSteps(m[1]!);
      let body = "";
      for (const step of steps) {
        const r = await ws.run(step);
        const out = r.output.replace(/\n+$/, "");
        body += `$ ${step.command}${out ? `\n${out}\n\n` : "\n"}`;
      }
      result += "```console\n" + body.replace(/\n+$/, "") + "\n```";
      last = m.index + m[0].length;
    }
    result += text.slice(last);
    text = result;
    // snippets: ```ts\n<<file>>\n``` ... ```text\n...\n```
    for (const m of [...text.matchAll(/<!-- snippet: (\S+) -->\n\n```ts\n[\s\S]*?```(\n\n[^`]*prints:\n\n)```text\n[\s\S]*?```/g)]) {
      const file = m[1]!;
      const src = readFileSync(join(REPO, file), "utf8");
      const region = /^\/\/ doc:start\n([\s\S]*?)^\/\/ doc:end$/m.exec(src)![1]!.replace(/\n$/, "");
      const printed = await runSnippet(file, ws.root);
      text = text.replace(
        m[0],
        "```ts\n" + region + "\n```" + m[2] + "```text\n" + printed + "\n```",
      );
    }
    writeFileSync(path, text);
    await ws.dispose();
  }
});
