import { describe, expect, it } from "vitest";
import { schedulerFromState } from "../../../src/tfjs/schedulers/index.js";
import { build, readJson, specOf } from "./helpers.js";

/** test/fixtures/torch/schedulers.json: recorded by PyTorch 2.13 (SGD, lr 0.1, 8 steps). */
interface Fixture {
  baseLr: number;
  schedulers: {
    name: string;
    args: Record<string, unknown>;
    initialLr: number;
    lrs: number[];
    stateDictAfter3Steps: Record<string, unknown>;
  }[];
}

const fixture = readJson<Fixture>("../../fixtures/torch/schedulers.json");

describe.each(fixture.schedulers.map((entry) => [entry.name, entry] as const))("%s", (_, entry) => {
  const make = () => build(specOf(entry.name, entry.args), [fixture.baseLr]);

  it("sets torch's rates, to the last bit, after the constructor and each of 8 steps", () => {
    const scheduler = make();
    expect(scheduler.getLastLr()).toEqual([entry.initialLr]);
    expect(scheduler.groups.lr).toEqual([entry.initialLr]);
    const rates: number[] = [];
    for (let i = 0; i < 8; i++) {
      scheduler.step();
      rates.push(scheduler.getLastLr()[0]!);
      expect(scheduler.groups.lr).toEqual(scheduler.getLastLr());
    }
    // toEqual compares numbers with Object.is: equal bits, not merely close.
    expect(rates).toEqual(entry.lrs);
  });

  it("gives torch's state_dict() after 3 steps, fields in torch's order", () => {
    const scheduler = make();
    for (let i = 0; i < 3; i++) scheduler.step();
    const state = scheduler.stateDict();
    expect(state).toEqual(entry.stateDictAfter3Steps);
    expect(Object.keys(state)).toEqual(Object.keys(entry.stateDictAfter3Steps));
  });

  it("continues torch's run after loading torch's state from step 3", () => {
    const scheduler = make();
    scheduler.loadStateDict(structuredClone(entry.stateDictAfter3Steps));
    expect(scheduler.getLastLr()).toEqual([entry.lrs[2]]);
    const rates: number[] = [];
    for (let i = 0; i < 5; i++) {
      scheduler.step();
      rates.push(scheduler.getLastLr()[0]!);
    }
    expect(rates).toEqual(entry.lrs.slice(3));
  });

  it("is rebuilt from torch's state alone by schedulerFromState", () => {
    const scheduler = schedulerFromState(structuredClone(entry.stateDictAfter3Steps));
    expect(scheduler.type).toBe(entry.name);
    expect(scheduler.stateDict()).toEqual(entry.stateDictAfter3Steps);
    const rates: number[] = [];
    for (let i = 0; i < 5; i++) {
      scheduler.step();
      rates.push(scheduler.getLastLr()[0]!);
    }
    expect(rates).toEqual(entry.lrs.slice(3));
  });
});
