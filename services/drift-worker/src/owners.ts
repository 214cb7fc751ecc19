/**
 * What an alert is about in the definitions' terms, and who owns that: a feature-drift subject
 * (`view:feature`) belongs to its view, a prediction-drift subject (`model:score`) and an accuracy
 * subject (`model`) to their model, a view's freshness subject (`view:<name>`) to the view, another
 * freshness subject (`topic` or `group/topic`) to the source reading that topic. The owner labels are those the SLO rules put on their alerts (`tessera slo
 * rules`): `team`, `oncall` (the receiver) and the route's own labels, so one Alertmanager route
 * tree serves both.
 */
import type { DriftAlertRecord } from "@tessera/kafka";
import type { Definitions, Ownership } from "@tessera/transforms";

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
    case "FRESHNESS":
      // A view past its SLA is `view:<name>`; a topic (`topic`, `group/topic`) has no colon.
      return head === "view" ? { kind: "view", name: alert.subject.slice("view:".length) } : undefined;
    default:
      return undefined;
  }
}

export function labelsOf(owned: Ownership | undefined): Record<string, string> {
  const labels: Record<string, string> = { ...(owned?.onCall?.labels ?? {}) };
  if (owned?.owner) labels["team"] = owned.owner;
  if (owned?.onCall?.receiver) labels["oncall"] = owned.onCall.receiver;
  return labels;
}

/** Owner labels of an alert's subject; empty when the definitions do not say. */
export function ownerLabels(
  definitions: Definitions,
  alert: Pick<DriftAlertRecord, "kind" | "subject">,
): Record<string, string> {
  const item = itemOf(alert);
  if (item?.kind === "view") return labelsOf(definitions.views.find((v) => v.name === item.name));
  if (item?.kind === "model") return labelsOf(definitions.models.find((m) => m.name === item.name));
  // FRESHNESS: `topic` or `group/topic`; the source reading that topic, if exactly one does.
  const topic = alert.subject.slice(alert.subject.lastIndexOf("/") + 1);
  const sources = definitions.sources.filter((s) => s.topic === topic);
  return sources.length === 1 ? labelsOf(sources[0]) : {};
}
