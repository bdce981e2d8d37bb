import type { CheckpointContext, PipelineStage } from "../pipeline/context.js";
import { applyPlan } from "./apply.js";
import { buildPlan, type StrategyPolicy } from "./build-plan.js";
import type { LoadPlan } from "./plan.js";

/** A loading strategy is a pipeline stage that can also show what it would do. */
export interface LoadingStrategy extends PipelineStage {
  /** The LoadPlan for this context; no side effects. */
  plan(context: CheckpointContext): Promise<LoadPlan>;
}

/** A strategy from a policy: plan with the shared rules, then apply the plan. */
export function policyStrategy(policy: StrategyPolicy): LoadingStrategy {
  return {
    name: policy.name,
    plan: (context) => buildPlan(context, policy),
    async process(context) {
      const plan = await buildPlan(context, policy);
      const result = await applyPlan(plan, context.targets, {
        mode: context.config.mode,
        onProgress: context.onProgress,
        signal: context.signal,
      });
      return {
        ...context,
        trainingState: result.trainingState,
        commits: [...(context.commits ?? []), result.undo],
        report: {
          ...context.report,
          plan,
          applied: true,
          tensorsLoaded: context.report.tensorsLoaded + result.tensorsLoaded,
          bytesLoaded: context.report.bytesLoaded + result.bytesLoaded,
        },
      };
    },
  };
}
