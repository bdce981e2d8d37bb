import { LoadError } from "../errors.js";
import type { Optimizer } from "./internals.js";
import { optimizerKind } from "./optimizer-kinds.js";

/**
 * Driving a tfjs optimizer's learning rate from a scheduler (tfjs has none): after each
 * `scheduler.step()`, copy its rate into the optimizer. tfjs optimizers have one param group.
 */

/** Sets the learning rate of an adam, sgd, momentum, rmsprop or adagrad optimizer. */
export function setLearningRate(optimizer: Optimizer, lr: number): void {
  const field = optimizerKind(optimizer).hyper.find((h) => h.torch === "lr");
  if (!field?.set)
    throw new LoadError("UNSUPPORTED_OPTIMIZER", "this optimizer's lr cannot be set");
  field.set(optimizer, lr);
}

/** Copies the scheduler's current rate into the optimizer and returns it. */
export function applyScheduledRate(
  scheduler: { getLastLr(): number[] },
  optimizer: Optimizer,
): number {
  const rates = scheduler.getLastLr();
  if (rates.length !== 1) {
    throw new LoadError(
      "SCHEDULER_GROUPS",
      `the scheduler drives ${rates.length} param groups; a tfjs optimizer has one`,
      { hint: "Construct the scheduler over one base learning rate." },
    );
  }
  setLearningRate(optimizer, rates[0]!);
  return rates[0]!;
}
