/**
 * The text on-call reads: the record's message names severity and subject once, and the one-line
 * form consoles print (tessera demo) does not put them in front of the message a second time
 * (it printed "CRITICAL fraud-v1:score: CRITICAL fraud-v1:score: psi …").
 */
import type { DriftAlertRecord } from "@tessera/kafka";
import { describe, expect, it } from "vitest";
import { alertLine, DriftMonitor, defaultConfig } from "../src/index.js";
import { Generator, referenceProfile } from "./scenario.js";

const occurrences = (text: string, part: string) => text.split(part).length - 1;

function incident(): DriftAlertRecord[] {
  const alerts: DriftAlertRecord[] = [];
  let clock = 1_800_000_000_000;
  const monitor = new DriftMonitor({
    config: defaultConfig({
      hysteresis: { coolDownMs: 0, resolveAfter: 1 },
      freshness: { warnSeconds: 1e9, criticalSeconds: 1e9 },
    }),
    profile: referenceProfile(),
    emit: (a) => alerts.push(a),
    now: () => clock,
  });
  const generator = new Generator(5);
  for (const incidents of [{ scoreShift: true }, {}]) {
    for (let i = 0; i < 1000; i++)
      for (const p of generator.next(incidents).predictions) monitor.ingestPrediction(p);
    clock += 1000;
    monitor.evaluate();
  }
  return alerts.filter((a) => a.subject === "fraud:score");
}

describe("alert text", () => {
  const [firing, resolved] = incident();

  it("each message names the record's severity and subject once, then what happened", () => {
    expect([firing!.status, resolved!.status]).toEqual(["FIRING", "RESOLVED"]);
    expect(firing!.message).toMatch(/^CRITICAL fraud:score: psi [\d.]+ ≥ 0\.25 on 1000 values \(psi /);
    expect(resolved!.message).toBe("OK fraud:score: psi back within threshold for 1 window(s)");
    for (const alert of [firing!, resolved!]) expect(occurrences(alert.message, alert.subject)).toBe(1);
  });

  it("the one-line form has status, kind, severity and subject each once", () => {
    for (const alert of [firing!, resolved!]) {
      const line = alertLine(alert);
      expect(occurrences(line, alert.subject), line).toBe(1);
      expect(occurrences(line, alert.kind), line).toBe(1);
      expect(occurrences(line, alert.status), line).toBe(1);
      expect(occurrences(line, alert.severity), line).toBe(1);
    }
    expect(alertLine(firing!)).toMatch(/^FIRING PREDICTION_DRIFT CRITICAL fraud:score: psi /);
    expect(alertLine(resolved!)).toBe(
      "RESOLVED PREDICTION_DRIFT OK fraud:score: psi back within threshold for 1 window(s)",
    );
  });
});
