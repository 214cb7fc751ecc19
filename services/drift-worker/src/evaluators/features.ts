/**
 * Feature drift: FeatureUpdate records (one per entity flush of a view) feed a window per
 * `view:feature`; a view is one dataset for multiple-testing control. The definition versions
 * seen per view are kept for the status page (a new version is a usual cause of drift).
 */
import type { FeatureUpdateRecord } from "@tessera/kafka";
import type { TraceRef } from "../hysteresis.js";
import type { StateRecords } from "./context.js";
import { DriftEvaluator } from "./drift.js";

const VERSIONS_MAX = 20;

export class FeatureDrift extends DriftEvaluator {
  private readonly versions = new Map<string, Set<string>>();

  ingest(update: FeatureUpdateRecord, now: number, trace?: TraceRef): void {
    const { views } = this.context.config.scope;
    if (views.length > 0 && !views.includes(update.view)) return;
    const versions = this.versions.get(update.view) ?? new Set<string>();
    this.versions.set(update.view, versions);
    if (versions.size < VERSIONS_MAX) versions.add(update.version);
    for (const feature in update.values) {
      const subject = this.subject(update.view, update.view, feature, now);
      subject?.series.add(update.values[feature], update.event_time, now, trace);
    }
  }

  versionsOf(view: string): string[] {
    return [...(this.versions.get(view) ?? [])];
  }

  override state(): StateRecords {
    const records = super.state();
    records.set(
      "versions",
      [...this.versions].map(([view, versions]) => [view, [...versions]]),
    );
    return records;
  }

  override restore(records: StateRecords): void {
    super.restore(records);
    const saved = (records.get("versions") ?? []) as Array<[string, string[]]>;
    for (const [view, versions] of saved) this.versions.set(view, new Set(versions));
  }
}
