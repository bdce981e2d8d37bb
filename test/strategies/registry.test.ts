import { afterEach, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { ConfigError } from "../../src/errors.js";
import { planLoad, runLoad } from "../../src/pipeline/load.js";
import { buildPlan } from "../../src/strategies/build-plan.js";
import {
  createStrategy,
  registerStrategy,
  strategyNames,
  unregisterStrategy,
} from "../../src/strategies/registry.js";
import { type LoadingStrategy, policyStrategy } from "../../src/strategies/strategy.js";
import {
  expAvg,
  expected,
  load,
  loading,
  RUN_STATE,
  SOURCE_EPOCH,
  sourceCheckpoint,
  sourceValue,
  TARGET_SCHEDULER_NOW,
  tinyTargets,
  valuesOf,
} from "./helpers.js";

/** Restores model and optimizer but keeps the scheduler and the run's counters: a "fork". */
const forkPolicy = {
  name: "fork_run",
  optimizer: "restore",
  scheduler: "keep",
  trainingState: "keep",
  resetLayers: false,
} as const;

const configText = (type: string) => `checkpoint:\n  loading:\n    type: ${type}\n`;

describe("custom strategies", () => {
  afterEach(() => {
    unregisterStrategy("fork_run");
    unregisterStrategy("count_only");
  });

  it("a registered policy is named in config like a built-in one and runs", async () => {
    registerStrategy("fork_run", () => policyStrategy(forkPolicy));
    expect(strategyNames()).toEqual([
      "weights_only",
      "transfer_learning",
      "warm_start",
      "cold_start",
      "fork_run",
    ]);
    const { config } = parseConfigText(configText("fork_run"), { knownTypes: strategyNames() });
    const loadingConfig = config.checkpoint.loading;
    // Custom strategies get weights_only's defaults.
    expect(loadingConfig).toMatchObject({ type: "fork_run", strict: true, mismatch: "error" });

    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const { trainingState, report } = await runLoad({
      checkpoint,
      targets,
      config: loadingConfig,
      trainingState: RUN_STATE,
    });
    expect(report.plan!.strategy).toBe("fork_run");
    expect(report.stages.map((s) => s.name)).toEqual(["read_metadata", "fork_run"]);
    expect(await valuesOf(targets, "enc.weight")).toEqual(
      expected("enc.weight", [3, 2], sourceValue),
    );
    const moments = targets.optimizer!.getState().state.get("enc.bias")!.tensors.get("exp_avg");
    expect(Array.from(moments as Float32Array)).toEqual([0, 1, 2].map((i) => expAvg(1, i)));
    expect(targets.scheduler!.getState()).toEqual(TARGET_SCHEDULER_NOW);
    expect(trainingState).toEqual(RUN_STATE);
    expect(trainingState.epoch).not.toBe(SOURCE_EPOCH);
  });

  it("a hand-written strategy stage is used as is", async () => {
    const seen: string[] = [];
    registerStrategy("count_only", (config) => {
      const strategy: LoadingStrategy = {
        name: "count_only",
        plan: (context) => buildPlan(context, { ...forkPolicy, name: "count_only" }),
        async process(context) {
          seen.push(`${config.type}:${context.targets.model.parameters().length}`);
          return { ...context, trainingState: { ...context.trainingState, epoch: 99 } };
        },
      };
      return strategy;
    });
    const { checkpoint } = sourceCheckpoint({ prefix: "model." });
    const targets = await tinyTargets();
    const before = targets.model.snapshot();
    const { trainingState } = await load(checkpoint, targets, loading("count_only"));
    expect(seen).toEqual(["count_only:8"]);
    expect(trainingState.epoch).toBe(99);
    expect(targets.model.snapshot()).toEqual(before);
    const plan = await planLoad({ checkpoint, targets, config: loading("count_only") });
    expect(plan.strategy).toBe("count_only");
    expect(plan.scheduler?.action).toBe("keep");
  });

  it("an unregistered name is unknown to config and to createStrategy", () => {
    registerStrategy("fork_run", () => policyStrategy(forkPolicy));
    unregisterStrategy("fork_run");
    expect(strategyNames()).not.toContain("fork_run");
    expect(() => parseConfigText(configText("fork_run"), { knownTypes: strategyNames() })).toThrow(
      /'fork_run' is not a strategy/,
    );
    const error = (() => {
      try {
        createStrategy({ ...loading("weights_only"), type: "fork_run" });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.code).toBe("UNKNOWN_STRATEGY");
    expect(error?.message).toContain("weights_only, transfer_learning, warm_start, cold_start");
  });

  it("built-in names cannot be replaced or removed, and names must be snake_case", () => {
    expect(() => registerStrategy("warm_start", () => policyStrategy(forkPolicy))).toThrow(
      /built-in strategy/,
    );
    unregisterStrategy("warm_start");
    expect(strategyNames()).toContain("warm_start");
    for (const bad of ["Fork", "fork-run", "1fork", ""]) {
      expect(() => registerStrategy(bad, () => policyStrategy(forkPolicy))).toThrow(ConfigError);
    }
  });
});
