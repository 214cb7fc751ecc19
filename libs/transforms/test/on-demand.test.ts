import { describe, expect, it } from "vitest";
import { DefinitionError, defineDefinitions, parseDefinitionsYaml } from "../src/index.js";

const yaml = (onDemand: string) => `
sources: [{ name: tx, topic: t, entity: card_id, timestamp: ts }]
views:
  - name: card
    source: tx
    features:
      - { name: n_1h, op: count, window: 1h }
      - { name: amount_sum_1h, op: sum, column: amount, window: 1h }
    onDemand:
${onDemand}
`;

describe("on-demand features in definitions", () => {
  it("compiles CEL over the view's features and the request context", () => {
    const defs = parseDefinitionsYaml(
      yaml(
        "      - { name: amount_vs_mean, expr: 'n_1h > 0.0 ? context.amount / (amount_sum_1h / n_1h) : 0.0' }",
      ),
    );
    const [odf] = defs.views[0]!.onDemand!;
    expect(odf!.name).toBe("amount_vs_mean");
    expect(odf!.run({ n_1h: 4, amount_sum_1h: 40, context: { amount: 25 } })).toBe(2.5);
  });

  it("fails with CEL's reason, and leaves Error.stackTraceLimit as it found it", () => {
    const defs = parseDefinitionsYaml(
      yaml("      - { name: ratio, expr: 'n_1h > 0.0 ? double(context.amount) / n_1h : 0.0' }"),
    );
    const [odf] = defs.views[0]!.onDemand!;
    const saved = Error.stackTraceLimit;
    Error.stackTraceLimit = 17; // a value CEL's evaluation never sets
    try {
      expect(() => odf!.run({ n_1h: 4, amount_sum_1h: 40, context: {} })).toThrow(/amount/);
      expect(Error.stackTraceLimit).toBe(17);
      expect(odf!.run({ n_1h: 4, amount_sum_1h: 40, context: { amount: 2 } })).toBe(0.5);
      expect(Error.stackTraceLimit).toBe(17);
    } finally {
      Error.stackTraceLimit = saved;
    }
  });

  it("does not change the view version (nothing stored depends on it)", () => {
    const plain = parseDefinitionsYaml(yaml("      []").replace("    onDemand:\n      []\n", ""));
    const withOdf = parseDefinitionsYaml(yaml("      - { name: x, expr: 'n_1h * 2.0' }"));
    expect(withOdf.views[0]!.version).toBe(plain.views[0]!.version);
  });

  it("accepts TypeScript functions", () => {
    const defs = defineDefinitions({
      sources: [{ name: "tx", topic: "t", entity: "card_id", timestamp: "ts" }],
      views: [
        {
          name: "card",
          source: "tx",
          features: [{ name: "n_1h", op: "count", window: "1h" }],
          onDemand: [{ name: "busy", fn: (row) => (row["n_1h"] as number) > 10 }],
        },
      ],
    });
    expect(defs.views[0]!.onDemand![0]!.run({ n_1h: 11 })).toBe(true);
  });

  it("names the field of a clash, a bad expression or a missing name", () => {
    const error = (() => {
      try {
        parseDefinitionsYaml(
          yaml(
            "      - { name: n_1h, expr: '1.0' }\n      - { name: bad, expr: '1 +' }\n      - { expr: '2.0' }",
          ),
        );
      } catch (e) {
        return e as DefinitionError;
      }
      throw new Error("expected a DefinitionError");
    })();
    expect(error).toBeInstanceOf(DefinitionError);
    const paths = error.issues.map((i) => i.path);
    expect(paths).toContain("views[0].onDemand[0].name");
    expect(paths).toContain("views[0].onDemand[1].expr");
    expect(paths).toContain("views[0].onDemand[2].name");
  });
});
