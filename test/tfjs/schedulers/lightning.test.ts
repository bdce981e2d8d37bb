import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { openCheckpointFile } from "../../../src/node.js";
import { findSchedulerStates, toSchedulerState } from "../../../src/state/torch-scheduler.js";
import {
  createCosineAnnealingLR,
  createLinearLR,
  schedulerFromState,
  schedulerTarget,
} from "../../../src/tfjs/schedulers/index.js";
import { readJson, recorded } from "./helpers.js";

/**
 * The scheduler states inside the PyTorch-made checkpoints (test/fixtures/torch), read as the
 * load pipeline reads them, load into our schedulers and continue as torch continues them
 * (recorded.json "resumed", from the same states).
 */

const expected = readJson<{ files: Record<string, { lrSchedulers: Record<string, unknown>[] }> }>(
  "../../fixtures/torch/expected.json",
).files;
const resumed = recorded().resumed;

async function schedulerStateOf(file: string) {
  const path = fileURLToPath(new URL(`../../fixtures/torch/${file}`, import.meta.url));
  const checkpoint = await openCheckpointFile(path);
  try {
    const found = findSchedulerStates(checkpoint.root);
    expect(found.map((f) => f.path)).toEqual([["lr_schedulers", 0]]);
    return await toSchedulerState(found[0]!.value, found[0]!.path);
  } finally {
    await checkpoint.close();
  }
}

const cases = [
  {
    file: "lightning.ckpt",
    run: "Lightning fixture's CosineAnnealingLR",
    make: () => createCosineAnnealingLR([1e-3], { tMax: 10 }),
  },
  {
    file: "anemoi.ckpt",
    run: "anemoi fixture's LinearLR",
    make: () => createLinearLR([6.25e-4], { startFactor: 0.5, totalIters: 4 }),
  },
];

describe.each(cases)("$file's lr_schedulers[0]", ({ file, run, make }) => {
  const continuation = resumed.find((r) => r.name === run)!;

  it("loads into the matching scheduler through schedulerTarget and continues as torch", async () => {
    const state = await schedulerStateOf(file);
    expect(state).toEqual(expected[file]!.lrSchedulers[0]);
    const scheduler = make();
    const target = schedulerTarget(scheduler);
    await target.setState(state);
    expect(target.getState()).toEqual(state);
    expect(scheduler.getLastLr()).toEqual(state._last_lr);
    const rates: number[][] = [];
    for (let i = 0; i < continuation.lrs.length; i++) {
      scheduler.step();
      rates.push(scheduler.getLastLr());
    }
    expect(rates).toEqual(continuation.lrs);
    expect(scheduler.stateDict()).toEqual(continuation.finalState);
  });

  it("is recognised and rebuilt by schedulerFromState", async () => {
    const state = await schedulerStateOf(file);
    const scheduler = schedulerFromState(state);
    expect(scheduler.type).toBe(make().type);
    for (const rates of continuation.lrs) {
      scheduler.step();
      expect(scheduler.getLastLr()).toEqual(rates);
    }
  });
});
