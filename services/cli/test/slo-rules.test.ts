import { parseDefinitionsYaml } from "@tessera/transforms";
import { describe, expect, it } from "vitest";
import { sloRules } from "../src/slo/rules.js";

const defs = (slo: string) =>
  parseDefinitionsYaml(`
sources: [{ name: tx, topic: t, entity: card_id, timestamp: ts }]
views: [{ name: card, source: tx, features: [{ name: n, op: count, window: 1h }] }]
slos: [${slo}]
`);

describe("tessera slo rules", () => {
  it("refuses a threshold that is not a histogram bucket, naming the field and the buckets", () => {
    expect(() => sloRules(defs("{ name: l, kind: latency, threshold: 7ms, objective: 0.99 }"))).toThrow(
      /^slos\[0\]\.threshold: 7ms is not a bucket of tessera_feature_server_request_duration_seconds \(0\.0005s, .*0\.01s/,
    );
  });

  it("records the SLO window itself when it is not one of the burn windows, and the budget over it", () => {
    const rules = sloRules(defs("{ name: av, kind: availability, objective: 0.999, window: 30d }")).flatMap(
      (g) => g.rules,
    );
    expect(rules.map((r) => r.record).filter(Boolean)).toContain("slo:sli_error:ratio_rate30d");
    expect(rules.find((r) => r.record === "slo:error_budget_remaining:ratio")?.expr).toBe(
      '1 - (slo:sli_error:ratio_rate30d{slo="av"} / 0.001)',
    );
    // 30 days: the workbook's own figures.
    const burns = rules
      .filter((r) => r.alert)
      .map((r) => Number(r.expr.split(" > ")[1]!.split(" ")[0]) / 0.001);
    expect(burns.map((b) => Number(b.toFixed(3)))).toEqual([14.4, 6, 3, 1]);
  });
});
