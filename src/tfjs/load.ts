import type { PipelineStage } from "../pipeline/context.js";
import { type LoadRequest, planLoad, runLoad } from "../pipeline/load.js";
import type { LoadPlan } from "../strategies/plan.js";
import type { Targets } from "../targets/types.js";
import type { TfjsModelTarget } from "./model-target.js";
import { type PytorchToTfjsOptions, pytorchToTfjsStage } from "./pytorch-mapping.js";

/**
 * Loading into a tfjs model with loadout's strategies: the core pipeline, with the PyTorch →
 * tfjs mapping stage before the strategy when the checkpoint has PyTorch names, and the
 * optimizer's notes (hyperparameters changed or dropped) added to the report.
 */

export interface TfjsTargets extends Targets {
  model: TfjsModelTarget;
}

export interface TfjsLoadRequest extends Omit<LoadRequest, "targets"> {
  targets: TfjsTargets;
  /**
   * The checkpoint has PyTorch names and layouts: map them onto the model (pytorch-mapping.ts).
   * Leave it out for checkpoints loadout wrote from tfjs, which already have the model's names.
   */
  pytorch?: boolean | PytorchToTfjsOptions;
}

function mappingStages(request: TfjsLoadRequest): PipelineStage[] {
  if (!request.pytorch) return [];
  const options = request.pytorch === true ? {} : request.pytorch;
  return [pytorchToTfjsStage(request.targets.model.model, options)];
}

/** The optimizer target's notes (hyperparameters changed or dropped) as report warnings. */
function optimizerNotes(targets: Targets): string[] {
  const notes = (targets.optimizer as { notes?: readonly string[] } | undefined)?.notes ?? [];
  return notes.map((note) => `optimizer: ${note}`);
}

/** What loading would do, per tfjs weight and for optimizer, scheduler and training state. Changes nothing. */
export function planTfjsLoad(request: TfjsLoadRequest): Promise<LoadPlan> {
  return planLoad({ ...request, before: [...mappingStages(request), ...(request.before ?? [])] });
}

/** The optimizer target's notes (hyperparameters changed or dropped) as report warnings. */
const optimizerNotesStage: PipelineStage = {
  name: "tfjs_report",
  async process(context) {
    return {
      ...context,
      report: {
        ...context.report,
        warnings: [...context.report.warnings, ...optimizerNotes(context.targets)],
      },
    };
  },
};

/** Loads the checkpoint into the tfjs targets: all-or-nothing in transactional mode. */
export function runTfjsLoad(request: TfjsLoadRequest): ReturnType<typeof runLoad> {
  return runLoad({
    ...request,
    before: [...mappingStages(request), ...(request.before ?? [])],
    after: [optimizerNotesStage, ...(request.after ?? [])],
  });
}
