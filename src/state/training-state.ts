/** Where a training run stands. Applied by warm_start, zeroed by cold_start. */
export interface TrainingState {
  epoch: number;
  globalStep: number;
  bestMetric: number | null;
  metricsHistory: MetricRecord[];
}

export interface MetricRecord {
  step: number;
  name: string;
  value: number;
}

export function freshTrainingState(): TrainingState {
  return { epoch: 0, globalStep: 0, bestMetric: null, metricsHistory: [] };
}
