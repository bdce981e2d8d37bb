import { describe, expect, it } from "vitest";
import type { ProgressEvent } from "../../src/pipeline/context.js";
import { sameSnapshot } from "../../src/targets/memory.js";
import { itemSize } from "../../src/tensors/dtype.js";
import { numelOf } from "../../src/tensors/shape.js";
import {
  load,
  loading,
  type SourceOptions,
  sourceCheckpoint,
  type TargetOptions,
  TINY,
  tinyTargets,
  tinyWith,
} from "../strategies/helpers.js";

/** One load per strategy, with options that exercise every kind of write. */
const CASES: { name: string; source: SourceOptions; target: TargetOptions; config: object }[] = [
  { name: "weights_only", source: { lightning: false }, target: {}, config: {} },
  {
    name: "transfer_learning",
    source: { prefix: "model." },
    target: { decls: tinyWith({ "dec.weight": { shape: [4, 3] }, "enc.bias": { shape: [5] } }) },
    config: { mismatch: "overlap", freeze_loaded: true },
  },
  {
    name: "transfer_learning",
    source: { prefix: "model." },
    target: { decls: tinyWith({ "dec.weight": { shape: [4, 3] } }) },
    config: { freeze: ["bn"] },
  },
  { name: "warm_start", source: { prefix: "model." }, target: {}, config: { freeze: ["enc"] } },
  {
    name: "cold_start",
    source: { prefix: "model." },
    target: {},
    config: { reset_layers: ["dec", "*.bias"] },
  },
];

async function run(c: (typeof CASES)[number], mode: "transactional" | "in_place") {
  const { checkpoint } = sourceCheckpoint(c.source);
  const targets = await tinyTargets(c.target);
  const arrays = new Map(TINY.map((d) => [d.name, targets.model.liveArray(d.name)]));
  const events: ProgressEvent[] = [];
  const result = await load(checkpoint, targets, loading(c.name, { ...c.config, mode }), {
    onProgress: (e) => events.push(e),
  });
  return { targets, arrays, events, ...result };
}

describe("in_place and transactional", () => {
  for (const c of CASES) {
    it(`give identical results: ${c.name} ${JSON.stringify(c.config)}`, async () => {
      const a = await run(c, "transactional");
      const b = await run(c, "in_place");
      expect(sameSnapshot(a.targets.model.snapshot(), b.targets.model.snapshot())).toBe(true);
      expect(b.targets.optimizer!.getState()).toEqual(a.targets.optimizer!.getState());
      expect(b.targets.scheduler!.getState()).toEqual(a.targets.scheduler!.getState());
      expect(b.trainingState).toEqual(a.trainingState);
      expect(b.report.plan).toEqual(a.report.plan);
      expect([b.report.tensorsLoaded, b.report.bytesLoaded]).toEqual([
        a.report.tensorsLoaded,
        a.report.bytesLoaded,
      ]);
      expect(b.events).toEqual(a.events);

      // in_place reads straight into the model's own arrays; transactional swaps in new ones.
      for (const entry of a.report.plan!.entries.filter((e) => e.action === "load")) {
        const same = (run: typeof a) =>
          run.targets.model.liveArray(entry.target) === run.arrays.get(entry.target);
        expect(same(a)).toBe(false);
        expect(same(b)).toBe(entry.overlap === null);
      }
    });
  }
});

describe("progress events", () => {
  for (const mode of ["transactional", "in_place"] as const) {
    for (const c of CASES) {
      it(`${mode}, ${c.name} ${JSON.stringify(c.config)}: counts and bytes add up to the plan's totals`, async () => {
        const { events, report } = await run(c, mode);
        const loads = report.plan!.entries.filter((e) => e.action === "load");
        // Bytes read are the checkpoint tensors' own: numel times the source dtype's size.
        const bytesOf = (e: (typeof loads)[number]) =>
          numelOf(e.sourceShape!) * itemSize(e.sourceDtype!);
        const totalBytes = loads.reduce((sum, e) => sum + bytesOf(e), 0);
        expect(totalBytes).toBeGreaterThan(0);

        expect(events.map((e) => e.key)).toEqual(loads.map((e) => e.target));
        let bytes = 0;
        events.forEach((event, i) => {
          bytes += bytesOf(loads[i]!);
          expect(event).toEqual({
            stage: "load",
            key: loads[i]!.target,
            tensorsDone: i + 1,
            tensorsTotal: loads.length,
            bytesDone: bytes,
            bytesTotal: totalBytes,
          });
        });
        expect(report.tensorsLoaded).toBe(loads.length);
        expect(report.bytesLoaded).toBe(totalBytes);
      });
    }
  }
});
