import { readFileSync } from "node:fs";
import {
  createCosineAnnealingLR,
  createExponentialLR,
  createLinearLR,
  createLrGroups,
  createMultiStepLR,
  createSequentialLR,
  createStepLR,
  type LrGroups,
  type LrScheduler,
} from "../../../src/tfjs/schedulers/index.js";

/** How record.py and schedulers.json describe a scheduler: torch's class and argument names. */
export type Spec =
  | { type: string; args: Record<string, unknown> }
  | { type: "SequentialLR"; schedulers: Spec[]; milestones: number[] };

export interface Run {
  name: string;
  spec: Spec;
  baseLrs: number[];
  /** Rates after the constructor, then after each step. */
  lrs: number[][];
  states: Record<string, Record<string, unknown>>;
}

export interface Recorded {
  runs: Run[];
  closedForm: {
    name: string;
    spec: Spec;
    baseLrs: number[];
    values: { epoch: number; lrs: number[]; state: Record<string, unknown> }[];
  }[];
  resumed: {
    name: string;
    spec: Spec;
    baseLrs: number[];
    state: Record<string, unknown>;
    lrs: number[][];
    finalState: Record<string, unknown>;
  }[];
  cosineSweep: {
    T_max: number;
    eta_min: number;
    baseLr: number;
    lrs: number[];
    firstLibmInexactStep: number | null;
  }[];
  exactMath: { cos: [number, number][]; powInt: [number, number, number | string][] };
}

export function readJson<T>(relative: string): T {
  return JSON.parse(readFileSync(new URL(relative, import.meta.url), "utf8")) as T;
}

export const recorded = (): Recorded => readJson<Recorded>("./recorded.json");

/** torch's constructor arguments, as the specs give them (absent ones take torch's defaults). */
interface TorchArgs {
  step_size: number;
  gamma: number;
  milestones: number[];
  T_max: number;
  eta_min?: number;
  start_factor?: number;
  end_factor?: number;
  total_iters?: number;
}

/** Builds our scheduler for a spec, over new groups at `baseLrs` (or shared `groups`). */
export function build(spec: Spec, baseLrs: number[], groups?: LrGroups): LrScheduler {
  const on = groups ?? createLrGroups(baseLrs);
  if ("schedulers" in spec) {
    return createSequentialLR(
      spec.schedulers.map((inner) => build(inner, baseLrs, on)),
      spec.milestones,
    );
  }
  const a = spec.args as unknown as TorchArgs;
  switch (spec.type) {
    case "StepLR":
      return createStepLR(on, { stepSize: a.step_size, gamma: a.gamma });
    case "MultiStepLR":
      return createMultiStepLR(on, { milestones: a.milestones, gamma: a.gamma });
    case "ExponentialLR":
      return createExponentialLR(on, { gamma: a.gamma });
    case "CosineAnnealingLR":
      return createCosineAnnealingLR(on, { tMax: a.T_max, etaMin: a.eta_min });
    case "LinearLR":
      return createLinearLR(on, {
        startFactor: a.start_factor,
        endFactor: a.end_factor,
        totalIters: a.total_iters,
      });
    default:
      throw new Error(`no scheduler ${spec.type}`);
  }
}

/** schedulers.json's flat form: {name, ...args} for SequentialLR's inner schedulers. */
export function specOf(name: string, args: Record<string, unknown>): Spec {
  if (name === "SequentialLR") {
    const inner = args.schedulers as ({ name: string } & Record<string, unknown>)[];
    return {
      type: "SequentialLR",
      schedulers: inner.map(({ name: innerName, ...rest }) => specOf(innerName, rest)),
      milestones: args.milestones as number[],
    };
  }
  return { type: name, args };
}

/** Distance in units in the last place between two doubles of the same sign. */
export function ulpDistance(a: number, b: number): number {
  const view = new DataView(new ArrayBuffer(16));
  view.setFloat64(0, a);
  view.setFloat64(8, b);
  return Math.abs(Number(view.getBigInt64(0) - view.getBigInt64(8)));
}
