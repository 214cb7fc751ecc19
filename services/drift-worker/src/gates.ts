/**
 * The drift worker's side of the quality gate: after every evaluation each view's and model's
 * causes are observed on the gate topic (GatePublisher writes only changes, and the state machine
 * in @tessera/transforms does the hysteresis):
 * - `drift_critical` while a critical incident is open on a feature of the view (prediction drift
 *   for a model);
 * - `freshness_sla` while the view's newest feature update is older than its SLA (definitions);
 * - `accuracy_floor` while the model's latest accuracy window is under its floor (the definitions'
 *   floor, else the worker's `accuracy` config).
 * A gate its owner acknowledged or overrode is not paged again: `pages` says which alerts the
 * paging sink (the webhook) should not get.
 */
import type { DriftAlertRecord, GatePublisher } from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import { type Definitions, GateError, type GateObservation, gateSubject } from "@tessera/transforms";
import type { ActiveAlert } from "./hysteresis.js";
import { type Item, itemOf } from "./owners.js";

/** What one evaluation saw: the monitor's accessors (monitor.ts). */
export interface GateInputs {
  now: number;
  incidents: ActiveAlert[];
  /** Age (ms) of the newest feature update per view. */
  viewAges: Map<string, number>;
  /** Latest accuracy window per model, with the floor the worker's config gives it. */
  accuracy: Map<string, { accuracy: number; floor: number }>;
}

export interface GateWatcherOptions {
  publisher: Pick<GatePublisher, "observe" | "status">;
  definitions?: Definitions;
  /** The observer named in the gate's audit log. */
  by?: string;
  logger?: Logger;
}

type Seen = Omit<GateObservation, "at" | "by">;

export class GateWatcher {
  private readonly by: string;
  /** FIRING alerts kept from the paging sink (their RESOLVED and repeats are kept back too). */
  private readonly unpaged = new Set<string>();

  constructor(private readonly options: GateWatcherOptions) {
    this.by = options.by ?? "drift-worker";
  }

  /** Observes every cause of every view and model known to the definitions or seen in the data. */
  async evaluate(inputs: GateInputs): Promise<void> {
    const observations = new Map<string, Seen[]>();
    const add = (item: Item, seen: Seen) => {
      const subject = subjectOf(item);
      if (subject) observations.set(subject, [...(observations.get(subject) ?? []), seen]);
    };
    const { definitions } = this.options;
    const views = new Set([...(definitions?.views.map((v) => v.name) ?? []), ...inputs.viewAges.keys()]);
    const models = new Set([...(definitions?.models.map((m) => m.name) ?? []), ...inputs.accuracy.keys()]);
    const critical = new Map<string, ActiveAlert>();
    for (const incident of inputs.incidents) {
      const item = itemOf(incident.alert);
      // Drift only: accuracy and freshness have causes of their own (below), not drift_critical.
      const kind = incident.alert.kind;
      if (!item || incident.worst !== "critical" || kind === "ACCURACY" || kind === "FRESHNESS") continue;
      const key = `${item.kind}:${item.name}`;
      if (!critical.has(key)) critical.set(key, incident);
      (item.kind === "view" ? views : models).add(item.name);
    }
    const drift = (item: Item) => {
      const incident = critical.get(`${item.kind}:${item.name}`);
      add(item, {
        cause: "drift_critical",
        active: incident !== undefined,
        ...(incident
          ? { incident: incident.alert.alert_id, note: `critical drift: ${incident.alert.subject}` }
          : {}),
      });
    };
    for (const name of views) {
      const item: Item = { kind: "view", name };
      drift(item);
      const slaMs = definitions?.views.find((v) => v.name === name)?.freshness?.maxAgeMs;
      const age = inputs.viewAges.get(name);
      if (slaMs !== undefined && age !== undefined) {
        const active = age > slaMs;
        add(item, {
          cause: "freshness_sla",
          active,
          ...(active ? { note: `newest update ${secs(age)} old, SLA ${secs(slaMs)}` } : {}),
        });
      }
    }
    for (const name of models) {
      const item: Item = { kind: "model", name };
      drift(item);
      const latest = inputs.accuracy.get(name);
      if (latest) {
        const floor = definitions?.models.find((m) => m.name === name)?.accuracyFloor ?? latest.floor;
        const active = latest.accuracy < floor;
        add(item, {
          cause: "accuracy_floor",
          active,
          ...(active ? { note: `accuracy ${latest.accuracy.toFixed(3)} under floor ${floor}` } : {}),
        });
      }
    }
    for (const [subject, seen] of observations) {
      for (const s of seen) {
        try {
          await this.options.publisher.observe(subject, { ...s, at: inputs.now, by: this.by });
        } catch (error) {
          // The gate topic being down must not stop the worker's evaluations or its alerts.
          this.options.logger?.warn({ err: error, subject, cause: s.cause }, "gate observation failed");
          return;
        }
      }
    }
  }

  /**
   * False for a new alert the paging sink should not get: a FIRING whose gate its owner has acked
   * or overridden (the owner knows; the gate still holds), and the RESOLVED of such a one.
   */
  pages(alert: DriftAlertRecord, now = Date.now()): boolean {
    if (this.unpaged.has(alert.alert_id)) {
      if (alert.status === "RESOLVED") this.unpaged.delete(alert.alert_id);
      return false;
    }
    if (alert.status !== "FIRING") return true;
    const item = itemOf(alert);
    if (!item) return true;
    const subject = subjectOf(item);
    const state = subject && this.options.publisher.status(subject, now)[0]?.state;
    if (state !== "acked" && state !== "overridden") return true;
    this.unpaged.add(alert.alert_id);
    return false;
  }

  /** Whether an open alert is repeated to the paging sink: not if its FIRING was kept back. */
  repeats(alert: DriftAlertRecord): boolean {
    return !this.unpaged.has(alert.alert_id);
  }
}

/** A name the gate topic cannot key (from the data, not the definitions) has no gate. */
function subjectOf(item: Item): string | undefined {
  try {
    return gateSubject(item.kind, item.name);
  } catch (error) {
    if (error instanceof GateError) return undefined;
    throw error;
  }
}

const secs = (ms: number) => `${Math.round(ms / 1000)} s`;
