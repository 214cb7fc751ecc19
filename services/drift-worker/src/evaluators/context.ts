/**
 * What every evaluator shares: the settings, the metrics, and `observe`, through which each
 * verdict reaches the incident tracker. Each evaluator keeps its own state and can hand it over
 * as JSON records (`state()`, id → value) and take it back (`restore`): that is what the state
 * topic keeps across restarts.
 */
import type { DriftWorkerConfig } from "../config.js";
import type { Observation } from "../hysteresis.js";
import type { WorkerMetrics } from "../metrics.js";

export interface EvaluatorContext {
  config: DriftWorkerConfig;
  metrics?: WorkerMetrics;
  observe(observation: Observation, now: number): void;
}

/** An evaluator's state: one JSON value per id, so each can be saved (and compacted) alone. */
export type StateRecords = Map<string, unknown>;

export interface Evaluator {
  evaluate(now: number): void;
  state(): StateRecords;
  restore(records: StateRecords): void;
}

export { level, RANK } from "../evaluate.js";

export function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}
