import { LoadError, LoadoutError } from "../errors.js";
import type { CheckpointContext, PipelineStage } from "./context.js";
import { rollBack } from "./undo.js";

/**
 * Runs stages in order, each on the context the previous one returned. When a stage fails (or
 * the load is aborted between stages), what earlier stages committed is undone. When the run
 * ends either way, the model target may release what it kept to undo its writes.
 */
export class CheckpointPipeline {
  constructor(readonly stages: readonly PipelineStage[]) {}

  async run(context: CheckpointContext): Promise<CheckpointContext> {
    try {
      return await this.runStages(context);
    } finally {
      // Committed or rolled back, the load is over: its Undos will not be called any more.
      context.targets.model.release?.();
    }
  }

  private async runStages(context: CheckpointContext): Promise<CheckpointContext> {
    let current = context;
    for (const stage of this.stages) {
      const started = performance.now();
      try {
        if (current.signal?.aborted) {
          throw new LoadError("ABORTED", `load aborted before stage '${stage.name}'`, {
            file: current.checkpoint.name,
          });
        }
        current = await stage.process(current);
      } catch (error) {
        const failure =
          error instanceof LoadoutError
            ? error
            : new LoadError(
                "STAGE_FAILED",
                `stage '${stage.name}' failed: ${(error as Error)?.message ?? String(error)}`,
                { file: current.checkpoint.name, cause: error },
              );
        await rollBack(current.commits ?? [], failure, current.checkpoint.name);
      }
      const ms = performance.now() - started;
      current = {
        ...current,
        report: { ...current.report, stages: [...current.report.stages, { name: stage.name, ms }] },
      };
    }
    return current;
  }
}
