/**
 * What the pages state besides their examples: the options tables of the strategy pages, the
 * allowlist, deny list, limits and error codes of safety.md, the error hierarchy and Checkpoint
 * members of library.md, trimmed outputs and quoted files, and every link. Expected values come
 * from the code's own tables (the docs describe them), PyTorch's records, or the source text.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { resolveLoadingConfig } from "../../src/config/resolve.js";
import { LOADING_KEYS } from "../../src/config/schema.js";
import * as errors from "../../src/errors.js";
import { DEFAULT_MAX_JSON_DEPTH } from "../../src/formats/json/exact-json.js";
import { denialReason } from "../../src/formats/pickle/deny.js";
import { DEFAULT_LIMITS } from "../../src/formats/pickle/limits.js";
import { builtinHandler } from "../../src/formats/pickle/python-globals.js";
import { MAX_HEADER_SIZE } from "../../src/formats/safetensors/header.js";
import { MAX_INDEX_BYTES } from "../../src/formats/safetensors/sharded.js";
import { storageKind } from "../../src/formats/torch/dtypes.js";
import { MAX_PICKLE_BYTES, MAX_TEXT_RECORD_BYTES } from "../../src/formats/torch/limits.js";
import { resolveTorchGlobal } from "../../src/formats/torch/rebuild.js";
import { MAX_DIRECTORY_BYTES } from "../../src/formats/zip/zip.js";
import { openCheckpointFile } from "../../src/node.js";
import { createWorkspace } from "./console.js";
import {
  codeBlocks,
  codeSpans,
  consoleSteps,
  DOCS,
  ownedPages,
  REPO,
  readPage,
  section,
  shellWords,
  tableRows,
} from "./markdown.js";

const source = (path: string) => readFileSync(join(REPO, "src", path), "utf8");

/** Every .ts file under src/, concatenated: where error codes must appear as string literals. */
function allSource(): string {
  const texts: string[] = [];
  const stack = [join(REPO, "src")];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) stack.push(path);
      else if (entry.name.endsWith(".ts")) texts.push(readFileSync(path, "utf8"));
    }
  }
  return texts.join("\n");
}

/** The string items of a `new Set([...])` constant in a source file. */
function setLiteral(text: string, name: string): string[] {
  const body = new RegExp(`const ${name}[^=]*= new Set\\(\\[([\\s\\S]*?)\\]\\)`).exec(text)![1]!;
  return [...body.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

const number = (cell: string) => Number(cell.replaceAll(",", "").split(" ")[0]);

describe("strategy pages: the options tables", () => {
  const strategies = ["weights_only", "transfer_learning", "warm_start", "cold_start"];

  for (const type of strategies) {
    it(`${type}.md lists every option with its resolved default`, () => {
      const rows = tableRows(section(readPage(`strategies/${type}.md`), "## Options"));
      const config = resolveLoadingConfig({ type }) as unknown as Record<string, unknown>;
      const options = rows.map((row) => row[0]!.replaceAll("`", ""));
      expect(options.sort()).toEqual(LOADING_KEYS.filter((k) => k !== "type").sort());
      for (const [option, shown] of rows) {
        const name = option!.replaceAll("`", "");
        // "—": the option does not apply (reset_layers outside cold_start); it resolves empty.
        const value = shown === "—" ? [] : parse(shown!.replaceAll("`", ""));
        expect(config[name], `${type}: ${name}`).toEqual(value);
      }
    });
  }
});

describe("quoted files", () => {
  it("a yaml block after a line naming a file shows that file", () => {
    let checked = 0;
    for (const page of ownedPages()) {
      for (const block of codeBlocks(readPage(page)).filter((b) => b.lang === "yaml")) {
        const named = /`([\w./-]+\.ya?ml)`:\s*$/.exec(block.before);
        if (!named) continue;
        expect(`${block.body}\n`, `${page}:${block.line}`).toBe(
          readFileSync(join(REPO, named[1]!), "utf8"),
        );
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});

/**
 * Compares a trimmed copy with the real value: arrays may elide runs of items with a string
 * "… N more", which must stand for exactly N items; everything else must be equal.
 */
function expectTrimmedOf(shown: unknown, real: unknown, at: string): void {
  if (!Array.isArray(shown)) {
    if (shown !== null && typeof shown === "object") {
      expect(real, at).toBeTypeOf("object");
      expect(Object.keys(real as object), at).toEqual(Object.keys(shown));
      for (const [key, value] of Object.entries(shown)) {
        expectTrimmedOf(value, (real as Record<string, unknown>)[key], `${at}.${key}`);
      }
      return;
    }
    expect(real, at).toEqual(shown);
    return;
  }
  expect(Array.isArray(real), at).toBe(true);
  const items = real as unknown[];
  let index = 0;
  for (const item of shown) {
    const elided = typeof item === "string" ? /^… (\d+) more$/.exec(item) : null;
    if (elided) {
      index += Number(elided[1]);
      continue;
    }
    expectTrimmedOf(item, items[index], `${at}[${index}]`);
    index++;
  }
  expect(index, `${at}: items shown plus elided`).toBe(items.length);
}

describe("inspect.md", () => {
  const text = readPage("inspect.md");
  const trimmed = codeBlocks(text).filter(
    (b) => b.lang === "json" && /Trimmed output of `loadout [^`]+`/.test(b.before),
  );

  it("the trimmed JSON is the real output with items elided, and its stats are torch's", async () => {
    expect(trimmed.length).toBe(1);
    const block = trimmed[0]!;
    const command = /Trimmed output of `(loadout [^`]+)`/.exec(block.before)![1]!;
    const workspace = await createWorkspace();
    try {
      const result = await workspace.run({ command, words: shellWords(command), output: "" });
      expect(result.code).toBe(0);
      const shown = JSON.parse(block.body) as {
        tensors: (string | { path: (string | number)[]; stats: Record<string, number> })[];
      };
      expectTrimmedOf(shown, JSON.parse(result.output), "output");

      const file = /inspect test\/fixtures\/torch\/(\S+)/.exec(command)![1]!;
      const torch = JSON.parse(
        readFileSync(join(REPO, "test/fixtures/torch/expected.json"), "utf8"),
      ).files[file].tensors as { path: (string | number)[]; [stat: string]: unknown }[];
      let compared = 0;
      for (const tensor of shown.tensors) {
        if (typeof tensor === "string") continue;
        const expected = torch.find((t) => JSON.stringify(t.path) === JSON.stringify(tensor.path));
        expect(expected, JSON.stringify(tensor.path)).toBeDefined();
        for (const stat of ["sum", "min", "max", "mean"]) {
          // Summation order differs from torch's; float64 sums of float32 values agree closely.
          expect(tensor.stats[stat]!, `${tensor.path} ${stat}`).toBeCloseTo(
            expected![stat] as number,
            12,
          );
        }
        compared++;
      }
      expect(compared).toBeGreaterThan(3);
    } finally {
      await workspace.dispose();
    }
  });

  it("the human --stats view agrees with torch's sums", () => {
    const step = codeBlocks(text)
      .filter((b) => b.lang === "console")
      .flatMap((b) => consoleSteps(b.body))
      .find((s) => s.command === "loadout inspect test/fixtures/torch/net_state_dict.pt --stats")!;
    const torch = JSON.parse(readFileSync(join(REPO, "test/fixtures/torch/expected.json"), "utf8"))
      .files["net_state_dict.pt"].tensors as { path: string[]; sum: number }[];
    for (const tensor of torch) {
      const row = new RegExp(`^ {4}${tensor.path[0]!.replaceAll(".", "\\.")} .* sum (\\S+) `, "m");
      const shown = Number(row.exec(step.output)![1]);
      // Printed with 6 significant digits.
      expect(Math.abs(shown - tensor.sum), tensor.path[0]).toBeLessThanOrEqual(
        5e-6 * Math.abs(tensor.sum),
      );
    }
  });
});

describe("warm_start.md", () => {
  it("the restored state shown is the optimizer's and scheduler's state as torch saved it", () => {
    const step = codeBlocks(readPage("strategies/warm_start.md"))
      .filter((b) => b.lang === "console")
      .flatMap((b) => consoleSteps(b.body))
      .find((s) => s.command === "cat out/resumed.json")!;
    const shown = JSON.parse(step.output);
    const torch = JSON.parse(readFileSync(join(REPO, "test/fixtures/torch/expected.json"), "utf8"))
      .files["lightning.ckpt"];
    const { param_names, params, ...hyper } = torch.optimizer.paramGroups[0];
    expect(shown.optimizer.groups[0].params).toEqual(
      (param_names as string[]).map((n) => n.slice("model.".length)),
    );
    expect((params as number[]).length).toBe(shown.optimizer.parametersWithState);
    expect(shown.optimizer.groups[0].hyper).toEqual(hyper);
    expect(shown.scheduler.state).toEqual(torch.lrSchedulers[0]);
    expect(shown.trainingState).toEqual({
      epoch: torch.trainingState.epoch,
      globalStep: torch.trainingState.global_step,
      bestMetric: torch.trainingState.best_model_score,
      metricsHistory: [],
    });
  });
});

describe("safety.md", () => {
  const text = readPage("safety.md");

  it("every global in the allowlist table has a handler, and every handler is listed", () => {
    const listed = tableRows(section(text, "## The allowlist")).flatMap((row) =>
      codeSpans(row[0]!),
    );
    expect(listed.length).toBeGreaterThan(30);
    for (const name of listed) {
      const cut = name.lastIndexOf(".");
      const [module, global] = [name.slice(0, cut), name.slice(cut + 1)];
      const handler = resolveTorchGlobal(module, global) ?? builtinHandler(module, global);
      expect(handler, name).toBeDefined();
    }
    // The other way round, from the source's tables of handlers.
    const handled = [
      ...[...source("formats/torch/rebuild.ts").matchAll(/^\s*\[\s*"(torch\.[\w.]+)",/gm)].map(
        (m) => m[1]!,
      ),
      ...[...source("formats/pickle/numpy.ts").matchAll(/^\s*\["(numpy\.[\w.]+)",/gm)].map(
        (m) => m[1]!,
      ),
      ...[
        ...source("formats/pickle/python-globals.ts").matchAll(
          /\["((?:collections|_codecs)\.\w+)",/g,
        ),
      ].map((m) => m[1]!),
      ...["set", "frozenset", "bytes", "bytearray", "complex"].map((n) => `builtins.${n}`),
    ];
    expect(handled.length).toBeGreaterThan(30);
    for (const name of handled) expect(listed, name).toContain(name);
  });

  it("every storage class named is one, and every builtin spelling works", () => {
    const paragraph = section(text, "## The allowlist")
      .split("\n\n")
      .find((p) => p.startsWith("Python 2 pickles"))!;
    const storages = codeSpans(paragraph).filter((s) => s.endsWith("Storage"));
    expect(storages.length).toBe(14);
    for (const name of storages) {
      const cut = name.lastIndexOf(".");
      const kind = storageKind(name.slice(0, cut), name.slice(cut + 1));
      expect(kind?.kind, name).toMatch(/typed|untyped/);
      if (name.startsWith("torch.") && !name.startsWith("torch.storage.")) {
        expect(storageKind("torch.cuda", name.slice(cut + 1))?.kind, `cuda ${name}`).toBe("typed");
      }
    }
    expect(builtinHandler("__builtin__", "set")).toBe(builtinHandler("builtins", "set"));
  });

  it("the deny list is the code's, and each name listed is refused", () => {
    const deny = source("formats/pickle/deny.ts");
    const never = section(text, "### Never allowed");
    const [modulesItem, builtinsItem] = never.split("\n- ").slice(1);
    const modules = codeSpans(modulesItem!);
    expect(modules).toEqual(setLiteral(deny, "DENIED_MODULES"));
    for (const module of modules) expect(denialReason(`${module}.sub`, "f"), module).toBeDefined();
    const allowed = codeSpans(builtinsItem!.split("the allowed ones are")[1]!);
    expect(allowed).toEqual(setLiteral(deny, "ALLOWED_BUILTINS"));
    for (const name of ["eval", "exec", "getattr", "__import__", "open"]) {
      expect(denialReason("builtins", name), name).toBeDefined();
    }
    expect(denialReason("numpy", "__builtins__")).toBeDefined();
    expect(denialReason("torch", "os.system")).toBeDefined();
  });

  it("the limits tables give the code's values", () => {
    const limits = section(text, "## Limits");
    const [pickle, fixed] = limits.split("Fixed limits of the formats:");
    const pickleRows = tableRows(pickle!);
    expect(pickleRows.map((r) => r[0]!.replaceAll("`", "")).sort()).toEqual(
      Object.keys(DEFAULT_LIMITS).sort(),
    );
    for (const [name, value] of pickleRows) {
      expect(number(value!), name).toBe(
        DEFAULT_LIMITS[name!.replaceAll("`", "") as keyof typeof DEFAULT_LIMITS],
      );
    }
    const metadataLimit = /const MAX_METADATA_BYTES = (\d+) << (\d+);/.exec(
      source("checkpoint/metadata.ts"),
    )!;
    const constants: Record<string, number> = {
      MAX_PICKLE_BYTES,
      MAX_TEXT_RECORD_BYTES,
      MAX_DIRECTORY_BYTES,
      MAX_HEADER_SIZE,
      MAX_INDEX_BYTES,
      DEFAULT_MAX_JSON_DEPTH,
      MAX_METADATA_BYTES: Number(metadataLimit[1]) * 2 ** Number(metadataLimit[2]),
    };
    const fixedRows = tableRows(fixed!);
    expect(fixedRows.map((r) => r[0]!.replaceAll("`", "")).sort()).toEqual(
      Object.keys(constants).sort(),
    );
    for (const [name, value] of fixedRows) {
      expect(number(value!), name).toBe(constants[name!.replaceAll("`", "")]);
    }
  });

  it("every error code the page names is one the code throws", () => {
    const code = allSource();
    const refused = section(text, "## What is refused");
    const names = new Set(
      codeSpans(refused).filter(
        (s) => /^(?:[A-Z][A-Z0-9_]+|[A-Z][a-z]+[A-Z]\w*|max\w+)$/.test(s) && !s.endsWith("Error"),
      ),
    );
    expect(names.size).toBeGreaterThan(60);
    // Pickle opcodes the page mentions are not codes.
    const opcodes = new Set(["BUILD", "FRAME", "NEWOBJ", "REDUCE", "INST", "OBJ", "GLOBAL"]);
    const unknown = [...names].filter(
      (name) => !opcodes.has(name) && !code.includes(`"${name}"`) && !(name in DEFAULT_LIMITS),
    );
    expect(unknown).toEqual([]);
  });

  it("every error class the page names exists", () => {
    const classes = codeSpans(text).filter((s) => /^[A-Z]\w+Error$/.test(s));
    expect(classes.length).toBeGreaterThan(5);
    for (const name of classes) expect(name in errors, name).toBe(true);
  });

  it("the corpus test the page describes exists", () => {
    expect(existsSync(join(REPO, "test/corpora/corpora.test.ts"))).toBe(true);
  });
});

describe("library.md", () => {
  const text = readPage("library.md");

  it("the error table is the hierarchy in src/errors.ts, every class in it", () => {
    const rows = tableRows(section(text, "## Errors"));
    const exported = Object.entries(errors).filter(
      ([, value]) => typeof value === "function" && value.prototype instanceof Error,
    );
    expect(rows.map((r) => r[0]!.replaceAll("`", "")).sort()).toEqual(
      exported.map(([name]) => name).sort(),
    );
    const classes = new Map(exported);
    for (const [name, parent] of rows) {
      const cls = classes.get(name!.replaceAll("`", "")) as object;
      expect(Object.getPrototypeOf(cls).name, name).toBe(parent!.replaceAll("`", ""));
    }
  });

  it("the Checkpoint members listed exist", async () => {
    const table = section(text, "## Opening a checkpoint").split("A `Checkpoint` has:")[1]!;
    const members = tableRows(table).map((row) =>
      row[0]!.replaceAll("`", "").replace(/\(.*\)$/, ""),
    );
    expect(members.length).toBeGreaterThan(10);
    const checkpoint = await openCheckpointFile(join(REPO, "test/fixtures/torch/net_fresh.pt"));
    try {
      for (const member of members) expect(member in checkpoint, member).toBe(true);
    } finally {
      await checkpoint.close();
    }
  });
});

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens. */
function anchors(markdown: string): Set<string> {
  const outside = markdown.replace(/^```[\s\S]*?^```$/gm, "");
  return new Set(
    [...outside.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      m[1]!
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .replace(/ /g, "-"),
    ),
  );
}

describe("links", () => {
  it("every relative link of the pages reaches a file, and every #fragment a heading", () => {
    let checked = 0;
    for (const page of ownedPages()) {
      const text = readPage(page).replace(/^```[\s\S]*?^```$/gm, "");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [file, fragment] = target!.split("#");
        const path = file ? join(DOCS, dirname(page), file) : join(DOCS, page);
        expect(existsSync(path), `${page}: ${target}`).toBe(true);
        if (fragment) {
          expect(anchors(readFileSync(path, "utf8")), `${page}: ${target}`).toContain(fragment);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});
