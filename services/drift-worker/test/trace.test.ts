/**
 * A drift alert names the trace of the window that fired: the newest *sampled* trace context its
 * FeatureUpdate records carried (the stream processor's flush), so on-call can follow it back.
 */
import type { DriftAlertRecord } from "@tessera/kafka";
import { describe, expect, it } from "vitest";
import { DriftMonitor, defaultConfig } from "../src/index.js";
import { Generator, referenceProfile } from "./scenario.js";

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");

describe("alert trace context", () => {
  it("FIRING names the newest sampled record of its window; RESOLVED the window that cleared it", () => {
    const alerts: DriftAlertRecord[] = [];
    let clock = 1_800_000_000_000;
    const config = defaultConfig({
      hysteresis: { coolDownMs: 0 },
      freshness: { warnSeconds: 1e9, criticalSeconds: 1e9 },
    });
    const m = new DriftMonitor({
      config,
      profile: referenceProfile(),
      emit: (a) => alerts.push(a),
      now: () => clock,
    });
    const generator = new Generator(21);
    let n = 0;
    /** Per window: the context of its last sampled record. */
    const lastSampled: string[] = [];
    const feed = (windows: number, incident: boolean) => {
      for (let w = 0; w < windows; w++) {
        let sampled = "";
        for (let i = 0; i < config.window.size; i++) {
          n++;
          // Every third record is traced and sampled, the others traced but not sampled.
          const traceFlags = n % 3 === 0 ? 1 : 0;
          const trace = { traceId: hex(n, 32), spanId: hex(n, 16), traceFlags };
          if (traceFlags === 1) sampled = trace.traceId;
          m.ingestFeatureUpdate(generator.next({ meanShift: incident }).update, trace);
        }
        lastSampled.push(sampled);
        clock += 1000;
        m.evaluate();
      }
    };
    feed(3, false);
    feed(2, true);
    feed(4, false);
    const firing = alerts.find((a) => a.status === "FIRING" && a.subject === "payments:amount_mean")!;
    expect(firing).toBeDefined();
    // The alert fired in window 3 (the first with the incident): its newest sampled record.
    expect(firing.trace_id).toBe(lastSampled[3]);
    expect(firing.span_id).toBe(firing.trace_id!.slice(16));
    const resolved = alerts.find((a) => a.status === "RESOLVED" && a.alert_id === firing.alert_id)!;
    expect(resolved.trace_id).not.toBe(firing.trace_id);
    expect(lastSampled.slice(5)).toContain(resolved.trace_id);
    // Freshness and accuracy alerts have no records to name.
    for (const a of alerts.filter((x) => x.kind === "FRESHNESS")) expect(a.trace_id).toBeNull();
  });
});
