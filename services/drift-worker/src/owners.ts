/**
 * What an alert is about in the definitions' terms: a feature-drift subject (`view:feature`)
 * belongs to its view, a prediction-drift subject (`model:score`) and an accuracy subject
 * (`model`) to their model.
 */
import type { DriftAlertRecord } from "@tessera/kafka";

export interface Item {
  kind: "view" | "model";
  name: string;
}

/** The view or model an alert is about (freshness alerts are about topics: none). */
export function itemOf(alert: Pick<DriftAlertRecord, "kind" | "subject">): Item | undefined {
  const head = alert.subject.split(":")[0]!;
  switch (alert.kind) {
    case "FEATURE_DRIFT":
      return { kind: "view", name: head };
    case "PREDICTION_DRIFT":
      return { kind: "model", name: head };
    case "ACCURACY":
      return { kind: "model", name: alert.subject };
    default:
      return undefined;
  }
}
