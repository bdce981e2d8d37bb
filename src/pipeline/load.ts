import type { Checkpoint } from "../checkpoint/checkpoint.js";
import type { LoadingConfig } from "../config/types.js";
import { freshTrainingState, type TrainingState } from "../state/training-state.js";
import type { LoadPlan } from "../strategies/plan.js";
import { createStrategy } from "../strategies/registry.js";
import type { Targets } from "../targets/types.js";
import {
  type CheckpointContext,
  emptyReport,
  type LoadReport,
  type PipelineStage,
  type ProgressEvent,
} from "./context.js";
import { CheckpointPipeline } from "./pipeline.js";

export interface LoadRequest {
  checkpoint: Checkpoint;
  targets: Targets;
  config: LoadingConfig;
  /** The run's current training state (default: a fresh one). */
  trainingState?: TrainingState;
  /** Stages to run before the strategy (after metadata is read). */
  before?: readonly PipelineStage[];
  /** Stages to run after the strategy. */
  after?: readonly PipelineStage[];
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

/** Reads the checkpoint's metadata (safetensors __metadata__, anemoi JSON) into the context. */
export const readMetadataStage: PipelineStage = {
  name: "read_metadata",
  async process(context) {
    const metadata: Record<string, unknown> = { ...context.metadata };
    if (context.checkpoint.metadata) Object.assign(metadata, context.checkpoint.metadata);
    for (const record of await context.checkpoint.jsonMetadata())
      metadata[record.name] = record.value;
    return { ...context, metadata };
  },
};

function contextFor(request: LoadRequest): CheckpointContext {
  return {
    checkpoint: request.checkpoint,
    targets: request.targets,
    trainingState: request.trainingState ?? freshTrainingState(),
    config: request.config,
    metadata: {},
    report: emptyReport(),
    ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  };
}

/**
 * What loading would do, per parameter and for optimizer, scheduler and training state. Runs the
 * `before` stages (which must not change targets), then plans; changes nothing.
 */
export async function planLoad(request: LoadRequest): Promise<LoadPlan> {
  let context = contextFor(request);
  // The stages before the strategy prepare what it plans from (metadata, a layout mapping).
  for (const stage of [readMetadataStage, ...(request.before ?? [])]) {
    context = await stage.process(context);
  }
  return createStrategy(context.config).plan(context);
}

/**
 * Loads the checkpoint into the targets with the configured strategy, as a pipeline:
 * read_metadata → [before] → strategy → [after]. All-or-nothing in transactional mode.
 */
export async function runLoad(
  request: LoadRequest,
): Promise<{ trainingState: TrainingState; report: LoadReport }> {
  const pipeline = new CheckpointPipeline([
    readMetadataStage,
    ...(request.before ?? []),
    createStrategy(request.config),
    ...(request.after ?? []),
  ]);
  const result = await pipeline.run(contextFor(request));
  return { trainingState: result.trainingState, report: result.report };
}
