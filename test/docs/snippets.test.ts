/**
 * The TypeScript examples of the docs are files in test/docs/snippets/: `tsc` type-checks them
 * with the rest of the project, and this suite checks that each page shows exactly the file's
 * `// doc:start` ... `// doc:end` region, runs each file from a stand-in for the repository root
 * (after `mkdir -p out`), and compares what it prints with the page's "It prints:" block. The
 * numbers printed are then checked against what PyTorch computed for the same fixtures
 * (test/fixtures/torch/expected.json, test/fixtures/strategies/values.json) or against
 * arithmetic.
 */
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createWorkspace, type Workspace } from "./console.js";
import { codeBlocks, ownedPages, REPO, readPage, snippetRegions } from "./markdown.js";

interface ShownSnippet {
  page: string;
  file: string;
  code: string;
  /** The "It prints:" block after it, when the page shows one. */
  prints: string | undefined;
}

/** Every ```ts block of the pages, with the snippet file its `<!-- snippet: ... -->` names. */
function shownSnippets(): ShownSnippet[] {
  const shown: ShownSnippet[] = [];
  for (const page of ownedPages()) {
    const blocks = codeBlocks(readPage(page));
    blocks.forEach((block, index) => {
      if (block.lang !== "ts") return;
      const marker = /<!-- snippet: (\S+) -->\s*$/.exec(block.before);
      expect(
        marker,
        `${page}:${block.line}: a ts block needs <!-- snippet: FILE --> before it`,
      ).not.toBeNull();
      const next = blocks[index + 1];
      const prints =
        next?.lang === "text" && /It prints:\s*$/.test(next.before) ? next.body : undefined;
      shown.push({ page, file: marker![1]!, code: block.body, prints });
    });
  }
  return shown;
}

const snippets = shownSnippets();
const regions = snippetRegions();

const TORCH = JSON.parse(readFileSync(join(REPO, "test/fixtures/torch/expected.json"), "utf8"))
  .files as Record<string, ExpectedFile>;
const VALUES = JSON.parse(readFileSync(join(REPO, "test/fixtures/strategies/values.json"), "utf8"))
  .files as Record<
  string,
  {
    tensors: Record<string, { values: number[] }>;
    optimizer?: Record<string, { name: string; step: number; exp_avg: number[] }>;
  }
>;

interface ExpectedFile {
  tensors: {
    path: (string | number)[];
    dtype: string;
    shape: number[];
    sum: number;
    first: (number | string)[];
  }[];
  trainingState?: { epoch: number; global_step: number; best_model_score: number };
  lrSchedulers?: { last_epoch: number; base_lrs: number[]; T_max: number }[];
}

const torchTensor = (file: string, name: string) =>
  TORCH[file]!.tensors.find((t) => t.path.join("/") === name)!;
const torchValues = (file: string, key: string) => VALUES[file]!.tensors[key]!.values;
const fixed = (values: number[]) => values.map((v) => v.toFixed(6)).join(", ");
const ITEM_BYTES: Record<string, number> = { float32: 4, int64: 8 };
const stateDictBytes = (file: string) =>
  TORCH[file]!.tensors.reduce(
    (sum, t) => sum + t.shape.reduce((n, d) => n * d, 1) * ITEM_BYTES[t.dtype]!,
    0,
  );

/** What each snippet's printed numbers must be, from PyTorch's records or arithmetic. */
const REFERENCE: Record<string, (printed: string) => void> = {
  "weights-only.ts": (printed) => {
    const net = TORCH["lightning.ckpt"]!.tensors.filter((t) => t.path[0] === "state_dict");
    const bytes = net.reduce(
      (sum, t) => sum + t.shape.reduce((n, d) => n * d, 1) * ITEM_BYTES[t.dtype]!,
      0,
    );
    expect(printed).toContain(`loaded ${net.length} tensors, ${bytes} bytes`);
    const bias = torchValues("torch/lightning.ckpt", "model.head.bias").slice(0, 3);
    expect(printed).toContain(`head.bias[0..2]: ${fixed(bias)}`);
  },
  "transfer-learning.ts": (printed) => {
    const loaded = torchValues("torch/lightning.ckpt", "model.head.bias")[9]!;
    const fresh = torchValues("torch/net_wide_fresh.pt", "head.bias").slice(10);
    expect(printed).toContain(`head.bias[9..11]: ${fixed([loaded, ...fresh])}`);
    expect(printed).toContain("head.weight: copied block [10, 16] of [12, 16]");
  },
  "warm-start.ts": (printed) => {
    const optimizer = VALUES["torch/lightning.ckpt"]!.optimizer!;
    const head = Object.values(optimizer).find((s) => s.name === "model.head.bias")!;
    expect(printed).toContain(
      `head.bias: step ${head.step}, exp_avg[0] ${Math.fround(head.exp_avg[0]!).toExponential(6)}`,
    );
    // CosineAnnealingLR after last_epoch steps: eta_min + (base - eta_min)(1 + cos(pi t / T)) / 2.
    const scheduler = TORCH["lightning.ckpt"]!.lrSchedulers![0]!;
    const base = scheduler.base_lrs[0]!;
    const lr = (base * (1 + Math.cos((Math.PI * scheduler.last_epoch) / scheduler.T_max))) / 2;
    const shown = Number(/^lr (\S+)$/m.exec(printed)![1]);
    expect(shown).toBeCloseTo(lr, 15);
    expect(printed).toContain(`scheduler last_epoch ${scheduler.last_epoch}`);
    const state = TORCH["lightning.ckpt"]!.trainingState!;
    expect(printed).toContain(`resume at epoch ${state.epoch}, step ${state.global_step}`);
  },
  "cold-start.ts": (printed) => {
    expect(printed).toContain("head.bias[0..1]: 0.000000, 0.000000");
    expect(printed).toContain("epoch 0, step 0");
  },
  "library-open.ts": (printed) => {
    expect(printed).toContain(`${TORCH["anemoi.ckpt"]!.tensors.length} tensors`);
  },
  "library-tensors.ts": (printed) => {
    const first = (name: string, count: number) =>
      torchTensor("dtype_zoo.pt", name).first.slice(0, count).join(", ");
    expect(printed).toContain(`as float32: ${first("bfloat16", 5)}`);
    expect(printed).toContain(`float16 into a Float64Array: ${first("float16", 5)}`);
    const transposed = /^transpose, contiguous false: (.*)$/m.exec(printed)![1]!;
    expect(transposed.split(", ").slice(0, 8).join(", ")).toBe(first("transpose", 8));
    expect(printed).toContain(`sum of float32: ${torchTensor("dtype_zoo.pt", "float32").sum}`);
    // torch records int64 values as float64: exact for these.
    const int64 = /^int64: (.*)$/m.exec(printed)![1]!.split(", ").map(Number);
    expect(int64.slice(0, 8)).toEqual(torchTensor("dtype_zoo.pt", "int64").first);
  },
  "library-state.ts": (printed) => {
    const state = TORCH["anemoi.ckpt"]!.trainingState!;
    expect(printed).toContain(
      `"epoch":${state.epoch},"globalStep":${state.global_step},"bestMetric":${state.best_model_score}`,
    );
  },
  "library-target.ts": (printed) => {
    const bias = Math.fround(torchValues("torch/net_state_dict.pt", "head.bias")[0]!);
    expect(printed).toBe(`4 loaded; head.bias[0] = ${bias}`);
  },
  "library-write.ts": (printed) => {
    const data = stateDictBytes("net_state_dict.pt");
    const header = Number(/^safetensors: 13 tensors, (\d+) bytes$/m.exec(printed)![1]) - data;
    // 8-byte length prefix, then a JSON header padded to a multiple of 8 (the reference's rule).
    expect(header % 8).toBe(0);
    expect(printed).toContain("torch: 13 storages");
  },
  "library-resume.ts": (printed) => {
    const state = TORCH["lightning.ckpt"]!.trainingState!;
    expect(printed).toContain(`epoch ${state.epoch}, step ${state.global_step}`);
  },
};

/** Runs a snippet file as a module with `cwd` as the working directory; returns what it logged. */
async function runSnippet(file: string, cwd: string): Promise<string> {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  });
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    await import(pathToFileURL(join(REPO, file)).href);
  } finally {
    process.chdir(previous);
    log.mockRestore();
  }
  return lines.join("\n");
}

describe("docs TypeScript snippets", () => {
  let workspace: Workspace;
  beforeAll(async () => {
    workspace = await createWorkspace();
    await mkdir(join(workspace.root, "out"));
  });
  afterAll(async () => {
    await workspace.dispose();
  });

  it("every snippet file is shown exactly once, and every page block is a snippet file", () => {
    expect(snippets.length).toBeGreaterThanOrEqual(12);
    expect(snippets.map((s) => s.file).sort()).toEqual([...regions.keys()].sort());
    for (const name of Object.keys(REFERENCE)) {
      expect(regions.has(`test/docs/snippets/${name}`), name).toBe(true);
    }
  });

  for (const snippet of snippets) {
    describe(`${snippet.page}: ${snippet.file}`, () => {
      it("shows the file's documented region, character for character", () => {
        expect(snippet.code).toBe(regions.get(snippet.file));
      });

      it("runs and prints what the page shows, which matches PyTorch's values", async () => {
        const printed = await runSnippet(snippet.file, workspace.root);
        expect(snippet.prints, "the page shows no 'It prints:' block").toBeDefined();
        expect(printed).toBe(snippet.prints);
        REFERENCE[snippet.file.split("/").pop()!]?.(printed);
      });
    });
  }
});
