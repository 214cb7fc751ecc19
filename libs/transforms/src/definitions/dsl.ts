import type { Definitions, DefinitionsSpec, FeatureSpec, ModelSpec, SourceSpec, ViewSpec } from "./types.js";
import { validateDefinitions } from "./validate.js";

/**
 * The TypeScript front-end: typed specs checked by the compiler, then the same validator as YAML.
 *
 *   export default defineDefinitions({
 *     sources: [source({ name: "transactions", topic: "payments.transactions", entity: "card_id", timestamp: "event_time" })],
 *     views: [view({ name: "card_activity", source: "transactions", features: [
 *       { name: "txn_count_1h", op: "count", window: "1h", hop: "5m" },
 *       { name: "amount_sum_6h", op: "sum", column: "amount", window: "6h", hop: "30m" },
 *     ] })],
 *   });
 */
export function defineDefinitions(spec: DefinitionsSpec): Definitions {
  return validateDefinitions(spec);
}

/** Identity helpers that give editors the types while writing a source, view, feature or model in isolation. */
export const source = (spec: SourceSpec): SourceSpec => spec;
export const view = (spec: ViewSpec): ViewSpec => spec;
export const feature = (spec: FeatureSpec): FeatureSpec => spec;
export const model = (spec: ModelSpec): ModelSpec => spec;
