import { LoadError, LoadoutError } from "../errors.js";
import type { CheckpointContext, PipelineStage } from "./context.js";

/** Runs stages in order, each on the context the previous one returned. */
export class CheckpointPipeline {
  constructor(readonly stages: readonly PipelineStage[]) {}

  async run(context: CheckpointContext): Promise<CheckpointContext> {
    let current = context;
    for (const stage of this.stages) {
      if (current.signal?.aborted) {
        throw new LoadError("ABORTED", `load aborted before stage '${stage.name}'`, {
          file: current.checkpoint.name,
        });
      }
      const started = performance.now();
      try {
        current = await stage.process(current);
      } catch (error) {
        if (error instanceof LoadoutError) throw error;
        throw new LoadError(
          "STAGE_FAILED",
          `stage '${stage.name}' failed: ${(error as Error)?.message ?? String(error)}`,
          {
            file: current.checkpoint.name,
            cause: error,
          },
        );
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
