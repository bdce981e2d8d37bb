import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/errors.js";
import { findSchedulerStates, toSchedulerState } from "../../src/state/torch-scheduler.js";
import { MemoryScheduler } from "../../src/targets/memory.js";
import { dict, scalarTensor } from "./helpers.js";

/**
 * SequentialLR(LinearLR(start_factor=0.1, total_iters=3) -> CosineAnnealingLR(T_max=5,
 * eta_min=0.001), milestones=[3]) over SGD(lr=0.1), state_dict() after 3 steps, as printed by
 * PyTorch 2.13: {'_milestones': [3], 'last_epoch': 3, '_last_lr': [0.1], '_schedulers': [{...}, {...}]}.
 */
const sequentialLR = () =>
  dict([
    ["_milestones", [3]],
    ["last_epoch", 3],
    ["_last_lr", [0.1]],
    [
      "_schedulers",
      [
        dict([
          ["start_factor", 0.1],
          ["end_factor", 1.0],
          ["total_iters", 3],
          ["base_lrs", [0.1]],
          ["last_epoch", 2],
          ["_step_count", 3],
          ["_is_initial", false],
          ["_get_lr_called_within_step", false],
          ["_last_lr", [0.07]],
        ]),
        dict([
          ["T_max", 5],
          ["eta_min", 0.001],
          ["base_lrs", [0.1]],
          ["last_epoch", 0],
          ["_step_count", 1],
          ["_is_initial", false],
          ["_get_lr_called_within_step", false],
          ["_last_lr", [0.1]],
        ]),
      ],
    ],
  ]);

describe("findSchedulerStates", () => {
  it("finds Lightning's lr_schedulers and the plain keys", () => {
    const root = dict([
      ["lr_schedulers", [sequentialLR()]],
      ["scheduler", dict([["last_epoch", 1]])],
      ["lr_scheduler", "cosine"],
      ["scheduler_state_dict", dict([["last_epoch", 2]])],
    ]);
    expect(findSchedulerStates(root).map(({ path, origin }) => ({ path, origin }))).toEqual([
      { path: ["lr_schedulers", 0], origin: "lightning" },
      { path: ["scheduler"], origin: "plain" },
      { path: ["scheduler_state_dict"], origin: "plain" },
    ]);
    expect(findSchedulerStates(null)).toEqual([]);
  });
});

describe("toSchedulerState", () => {
  it("converts a nested scheduler state to plain data PyTorch's field names", async () => {
    expect(await toSchedulerState(sequentialLR())).toEqual({
      _milestones: [3],
      last_epoch: 3,
      _last_lr: [0.1],
      _schedulers: [
        {
          start_factor: 0.1,
          end_factor: 1.0,
          total_iters: 3,
          base_lrs: [0.1],
          last_epoch: 2,
          _step_count: 3,
          _is_initial: false,
          _get_lr_called_within_step: false,
          _last_lr: [0.07],
        },
        {
          T_max: 5,
          eta_min: 0.001,
          base_lrs: [0.1],
          last_epoch: 0,
          _step_count: 1,
          _is_initial: false,
          _get_lr_called_within_step: false,
          _last_lr: [0.1],
        },
      ],
    });
  });

  it("keeps ReduceLROnPlateau's infinite best and reads tensor learning rates", async () => {
    const state = await toSchedulerState(
      dict([
        ["best", Number.POSITIVE_INFINITY],
        ["mode_worse", Number.POSITIVE_INFINITY],
        ["_last_lr", [scalarTensor(0.5)]],
      ]),
    );
    expect(state).toEqual({
      best: Number.POSITIVE_INFINITY,
      mode_worse: Number.POSITIVE_INFINITY,
      _last_lr: [0.5],
    });
  });

  it("refuses a state that is not a dict, naming where", async () => {
    const error = await toSchedulerState([1], ["lr_schedulers", 0]).catch((e) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect(error.key).toBe("lr_schedulers/0");
  });

  it("is what a MemoryScheduler takes", async () => {
    const scheduler = new MemoryScheduler("SequentialLR", {});
    const state = await toSchedulerState(sequentialLR());
    await scheduler.setState(state);
    expect(scheduler.getState()).toEqual(state);
  });
});
