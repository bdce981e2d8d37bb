import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/checkpoint/open.js";
import { type ByteSource, MemorySource } from "../../src/io/byte-source.js";
import { runTfjsLoad } from "../../src/tfjs/load.js";
import { tfjsModelTarget } from "../../src/tfjs/model-target.js";
import { buildNet, config, snapshot, torchFixture, useBackend } from "./helpers.js";

/**
 * Transactional staging reads ahead while the tensor before is transposed: a few reads in
 * flight (the one being staged and four ahead, apply.ts's STAGING_AHEAD), values and failures
 * still taken in plan order, and nothing left running when a load fails.
 */

/** The Net's weights a weights_only load writes: conv 2, bn 4, fc 2, norm 2, head 2. */
const LOADED_TENSORS = 12;

/** What one tensor read does, by its position among the load's tensor reads. */
type ReadPolicy = (index: number) => { delayMs?: number; error?: Error } | undefined;

/**
 * The fixture's bytes, with every tensor read (readInto, once `gating` is on: opening reads
 * the index with read()) counted and, per `policy`, delayed or failed.
 */
class GatedSource implements ByteSource {
  gating = false;
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  private readonly inner: MemorySource;

  constructor(
    bytes: Uint8Array,
    private readonly policy: ReadPolicy = () => undefined,
  ) {
    this.inner = new MemorySource(bytes, "net_state_dict.pt");
  }
  get name() {
    return this.inner.name;
  }
  get size() {
    return this.inner.size;
  }
  get bytesRead() {
    return this.inner.bytesRead;
  }
  read(offset: number, length: number) {
    return this.inner.read(offset, length);
  }
  async readInto(offset: number, destination: Uint8Array) {
    if (!this.gating) return this.inner.readInto(offset, destination);
    const rule = this.policy(this.calls++) ?? {};
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      // Always a macrotask: a read from disk never completes within the call.
      await new Promise((resolve) => setTimeout(resolve, rule.delayMs ?? 0));
      if (rule.error) throw rule.error;
      await this.inner.readInto(offset, destination);
    } finally {
      this.inFlight--;
    }
  }
  close() {
    return this.inner.close();
  }
}

const fixtureBytes = () => new Uint8Array(readFileSync(torchFixture("net_state_dict.pt")));

async function load(source: GatedSource, signal?: AbortSignal) {
  const checkpoint = await openCheckpoint(source);
  source.gating = true;
  const model = buildNet({ seed: 60 });
  const before = snapshot(model);
  const tensorsBefore = tf.memory().numTensors;
  const run = runTfjsLoad({
    checkpoint,
    targets: { model: tfjsModelTarget(model) },
    config: config({ type: "weights_only", mode: "transactional" }),
    pytorch: true,
    ...(signal ? { signal } : {}),
  });
  /** After a failed load: every read settled, the model and tfjs's tensors as before; then cleans up. */
  const expectNothingChanged = async () => {
    expect(source.inFlight).toBe(0);
    expect(snapshot(model)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    model.dispose();
    await checkpoint.close();
  };
  return { checkpoint, model, run, expectNothingChanged };
}

beforeAll(async () => {
  await useBackend("cpu");
});

describe("transactional staging with reads in flight ahead", () => {
  it("reads several tensors at a time and loads the same values as one at a time", async () => {
    const source = new GatedSource(fixtureBytes());
    const { checkpoint, model, run } = await load(source);
    const { report } = await run;
    // One read per loaded tensor, the next ones started before the first ended, five at most.
    expect(report.tensorsLoaded).toBe(LOADED_TENSORS);
    expect(source.calls).toBe(LOADED_TENSORS);
    expect(source.maxInFlight).toBe(5);

    // The reference: the same load with reads one at a time (in_place writes tensor by tensor
    // from its own reads; the Net's small weights are read into the model's arrays).
    const reference = buildNet({ seed: 60 });
    const plain = await openCheckpoint(new MemorySource(fixtureBytes(), "net_state_dict.pt"));
    await runTfjsLoad({
      checkpoint: plain,
      targets: { model: tfjsModelTarget(reference) },
      config: config({ type: "weights_only", mode: "in_place" }),
      pytorch: true,
    });
    expect(snapshot(model).weights).toEqual(snapshot(reference).weights);
    model.dispose();
    reference.dispose();
    await checkpoint.close();
    await plain.close();
  });

  it("a read failing while the previous one is still in flight: nothing changes, nothing runs on", async () => {
    const source = new GatedSource(fixtureBytes(), (index) =>
      index === 0
        ? { delayMs: 30 }
        : index === 1
          ? { error: new Error("disk failure in the second tensor") }
          : undefined,
    );
    const { run, expectNothingChanged } = await load(source);
    await expect(run).rejects.toMatchObject({
      code: "APPLY_FAILED",
      message: expect.stringContaining("disk failure in the second tensor"),
    });
    // Staging stopped at the failure (reads ahead of it were started, not the rest), and every
    // read had settled before the load failed.
    expect(source.calls).toBeLessThan(LOADED_TENSORS);
    await expectNothingChanged();
  });

  it("two failing reads: the first in plan order is the one reported, even if it fails last", async () => {
    const source = new GatedSource(fixtureBytes(), (index) =>
      index === 0
        ? { delayMs: 30, error: new Error("disk failure in the first tensor") }
        : index === 1
          ? { error: new Error("disk failure in the second tensor") }
          : undefined,
    );
    const { run, expectNothingChanged } = await load(source);
    const error = await run.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain("disk failure in the first tensor");
    expect(error?.message).not.toContain("second");
    expect(source.calls).toBeLessThan(LOADED_TENSORS);
    await expectNothingChanged();
  });

  it("an abort while reads are in flight: ABORTED once they settle, nothing changed", async () => {
    const controller = new AbortController();
    const source = new GatedSource(fixtureBytes(), (index) => {
      if (index === 2) controller.abort();
      return { delayMs: 5 };
    });
    const { run, expectNothingChanged } = await load(source, controller.signal);
    await expect(run).rejects.toMatchObject({ code: "ABORTED" });
    // Aborting stops the staging: the five reads started before it (the first and four ahead)
    // ran, and none after.
    expect(source.calls).toBe(5);
    await expectNothingChanged();
  });
});
