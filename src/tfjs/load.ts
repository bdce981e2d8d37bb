import { type CheckpointContext, emptyReport, type PipelineStage } from "../pipeline/context.js";
import { type LoadRequest, readMetadataStage, runLoad } from "../pipeline/load.js";
import { freshTrainingState, type TrainingState } from "../state/training-state.js";
import type { LoadPlan } from "../strategies/plan.js";
import { createStrategy } from "../strategies/registry.js";
import type { Targets } from "../targets/types.js";
import type { TfjsModelTarget } from "./model-target.js";
import { type PytorchToTfjsOptions, pytorchToTfjsStage } from "./pytorch-mapping.js";
import type { MappedSourceTensor } from "./source-values.js";

/**
 * Loading into a tfjs model with loadout's strategies: the core pipeline, with the PyTorch →
 * tfjs mapping stage before the strategy when the checkpoint has PyTorch names, and the plan
 * completed with what the mapping knows (why a key is unused) and the optimizer's notes.
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

/** Gives unexpected keys the mapping marked unused their reason (in place: the plan stays applicable). */
function explainUnused(plan: LoadPlan, context: CheckpointContext): void {
  const tensors = context.sourceStateDict?.tensors;
  if (!tensors) return;
  for (const entry of plan.unexpected) {
    const reason = (tensors.get(entry.source) as MappedSourceTensor | undefined)?.unused;
    if (reason !== undefined) entry.reason = reason;
  }
}

/** The optimizer target's notes (hyperparameters changed or dropped) as report warnings. */
function optimizerNotes(targets: Targets): string[] {
  const notes = (targets.optimizer as { notes?: readonly string[] } | undefined)?.notes ?? [];
  return notes.map((note) => `optimizer: ${note}`);
}

/** What loading would do, per tfjs weight and for optimizer, scheduler and training state. Changes nothing. */
export async function planTfjsLoad(request: TfjsLoadRequest): Promise<LoadPlan> {
  let context: CheckpointContext = {
    checkpoint: request.checkpoint,
    targets: request.targets,
    trainingState: request.trainingState ?? freshTrainingState(),
    config: request.config,
    metadata: {},
    report: emptyReport(),
  };
  for (const stage of [readMetadataStage, ...mappingStages(request), ...(request.before ?? [])]) {
    context = await stage.process(context);
  }
  const plan = await createStrategy(context.config).plan(context);
  explainUnused(plan, context);
  return plan;
}

/** Loads the checkpoint into the tfjs targets: all-or-nothing in transactional mode. */
export async function runTfjsLoad(
  request: TfjsLoadRequest,
): Promise<Awaited<ReturnType<typeof runLoad>> & { trainingState: TrainingState }> {
  const complete: PipelineStage = {
    name: "tfjs_report",
    async process(context) {
      if (context.report.plan) explainUnused(context.report.plan, context);
      return {
        ...context,
        report: {
          ...context.report,
          warnings: [...context.report.warnings, ...optimizerNotes(context.targets)],
        },
      };
    },
  };
  return runLoad({
    ...request,
    before: [...mappingStages(request), ...(request.before ?? [])],
    after: [complete, ...(request.after ?? [])],
  });
}
