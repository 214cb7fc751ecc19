import { describe, expect, it } from "vitest";
import {
  DefinitionError,
  defaultHop,
  defineDefinitions,
  parseDefinitionsYaml,
  parseDuration,
  unowned,
  ViewState,
} from "../src/index.js";

const ISSUE_YAML = `
sources:
  - name: transactions
    topic: payments.transactions
    entity: card_id
    timestamp: event_time
views:
  - name: card_activity
    source: transactions
    features:
      - { name: txn_count_1h, op: count, window: 1h, hop: 5m }
      - { name: amount_sum_6h, op: sum, column: amount, window: 6h, hop: 30m }
`;

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof DefinitionError) return error.message.split("\n");
    throw error;
  }
  throw new Error("expected a DefinitionError");
}

describe("definitions", () => {
  it("parses the documented YAML shape", () => {
    const defs = parseDefinitionsYaml(ISSUE_YAML);
    const view = defs.views[0]!;
    expect(view.source).toEqual({
      name: "transactions",
      topic: "payments.transactions",
      entity: "card_id",
      timestamp: "event_time",
    });
    expect(view.features).toEqual([
      { name: "txn_count_1h", op: "count", windowMs: 3_600_000, hopMs: 300_000 },
      { name: "amount_sum_6h", op: "sum", column: "amount", windowMs: 21_600_000, hopMs: 1_800_000 },
    ]);
    expect(view.retentionMs).toBe(21_600_000 + 1_800_000);
    expect(view.version).toMatch(/^[0-9a-f]{16}$/);
  });

  it("the TypeScript DSL and YAML give the same view and version", () => {
    const ts = defineDefinitions({
      sources: [
        { name: "transactions", topic: "payments.transactions", entity: "card_id", timestamp: "event_time" },
      ],
      views: [
        {
          name: "card_activity",
          source: "transactions",
          features: [
            { name: "amount_sum_6h", op: "sum", column: "amount", window: "6h", hop: 1_800_000 },
            { name: "txn_count_1h", op: "count", window: "1h" },
          ],
        },
      ],
    });
    // Feature order and how durations are written do not change the version; the default hop of 1h is 5m.
    expect(ts.views[0]!.version).toBe(parseDefinitionsYaml(ISSUE_YAML).views[0]!.version);
    const changed = parseDefinitionsYaml(ISSUE_YAML.replace("window: 6h", "window: 7h"));
    expect(changed.views[0]!.version).not.toBe(ts.views[0]!.version);
  });

  it("names the offending field's path", () => {
    const bad = ISSUE_YAML.replace(
      "      - { name: amount_sum_6h",
      "      - { name: a, op: mean, column: x, window: 1h }\n      - { name: b, op: max, column: x, window: 90x }\n      - { name: amount_sum_6h",
    ).replace("txn_count_1h, op: count, window: 1h, hop: 5m", "txn_count_1h, op: count, window: 1h, hop: 2h");
    const issues = issuesOf(() =>
      parseDefinitionsYaml(bad.replace("name: a, op: mean", "name: a, op: median")),
    );
    expect(issues).toEqual([
      expect.stringMatching(/^views\[0\]\.features\[0\]\.hop: 2h is longer than the window 1h \(line \d+\)$/),
      expect.stringMatching(/^views\[0\]\.features\[1\]\.op: "median" is not an op/),
      expect.stringMatching(/^views\[0\]\.features\[2\]\.window: "90x" is not a duration/),
    ]);
  });

  it("rejects unknown sources, fields, ops without parameters, duplicates and YAML syntax errors", () => {
    const issues = issuesOf(() =>
      defineDefinitions({
        sources: [{ name: "s", topic: "t", entity: "id", timestamp: "ts", colour: "red" } as never],
        views: [
          {
            name: "v",
            source: "nope",
            features: [
              { name: "f", op: "last_k", column: "x", window: "1h" } as never,
              { name: "f", op: "approx_quantile", column: "x", window: "1h", quantile: 2 },
            ],
          },
        ],
      }),
    );
    expect(issues).toEqual([
      expect.stringContaining("sources[0].colour: unknown field"),
      'views[0].source: unknown source "nope"',
      "views[0].features[0].k: last_k needs k, an integer from 1 to 1000",
      'views[0].features[1].name: duplicate feature "f" in this view',
      "views[0].features[1].quantile: approx_quantile needs quantile, a number from 0 to 1",
    ]);
    expect(issuesOf(() => parseDefinitionsYaml("sources: [\n"))[0]).toMatch(/^\(yaml line \d+\)/);
  });

  it("parses durations and defaults hops by the documented rule", () => {
    expect(parseDuration("90m")).toBe(5_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5h")).toBeUndefined();
    expect(parseDuration("0s")).toBeUndefined();
    expect(defaultHop(2 * 60_000)).toBe(2 * 60_000); // never longer than the window
    expect(defaultHop(11 * 3_600_000)).toBe(300_000);
    expect(defaultHop(12 * 3_600_000)).toBe(3_600_000);
    expect(defaultHop(30 * 86_400_000)).toBe(86_400_000);
  });
});

describe("row transforms", () => {
  const yaml = `
sources: [{ name: tx, topic: t, entity: card_id, timestamp: ts }]
views:
  - name: v
    source: tx
    derive:
      - { name: amount_usd, expr: "amount * rate" }
      - { name: big, expr: "amount_usd > 100.0" }
    filter: "country == 'US'"
    features:
      - { name: usd, op: sum, column: amount_usd, window: 1h }
      - { name: big_n, op: top_k, column: big, k: 1, window: 1h }
`;

  it("evaluates CEL per event, filters, and reports evaluation errors as invalid", () => {
    const state = new ViewState(parseDefinitionsYaml(yaml).views[0]!);
    const at = { offset: 0, now: 10_000 };
    expect(state.apply({ card_id: "c", ts: 1, amount: 100, rate: 1.5, country: "US" }, at).status).toBe(
      "applied",
    );
    expect(state.apply({ card_id: "c", ts: 2, amount: 100, rate: 1.5, country: "FR" }, at).status).toBe(
      "filtered",
    );
    const bad = state.apply({ card_id: "c", ts: 3, amount: "x", rate: 1.5, country: "US" }, at);
    expect(bad).toMatchObject({ status: "invalid", reason: expect.stringContaining("amount * rate") });
    expect(state.valueAt("c", 10_000)).toEqual({ usd: 150, big_n: [true] });
  });

  it("reports CEL syntax errors with their path, and runs TypeScript functions", () => {
    expect(issuesOf(() => parseDefinitionsYaml(yaml.replace("amount * rate", "amount *")))[0]).toMatch(
      /^views\[0\]\.derive\[0\]\.expr: invalid CEL/,
    );
    const defs = defineDefinitions({
      sources: [{ name: "tx", topic: "t", entity: "card_id", timestamp: "ts" }],
      views: [
        {
          name: "v",
          source: "tx",
          derive: [{ name: "cents", fn: (row) => Math.round((row.amount as number) * 100) }],
          filter: (row) => row.amount !== 0,
          features: [{ name: "cents", op: "max", column: "cents", window: "1h" }],
        },
      ],
    });
    const state = new ViewState(defs.views[0]!);
    state.apply({ card_id: "c", ts: 1, amount: 1.234 }, { offset: 0, now: 2 });
    expect(state.valueAt("c", 2)).toEqual({ cents: 123 });
  });
});

describe("owners and contracts", () => {
  const CONTRACT_YAML = `
sources:
  - name: transactions
    topic: payments.transactions
    schema: payments.transactions-value
    compatibility: BACKWARD
    archive: s3://archive/payments.transactions
    entity: card_id
    timestamp: event_time
    owner: payments-platform
    onCall: { receiver: payments-pager, labels: { service: payments } }
    freshness: { maxAge: 10m }
views:
  - name: card_activity
    source: transactions
    owner: risk-features
    onCall: { receiver: risk-pager }
    freshness: { maxAge: 5m, onStale: refuse }
    features:
      - { name: txn_count_1h, op: count, window: 1h, hop: 5m }
  - name: card_amounts
    source: transactions
    features:
      - { name: amount_sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
models:
  - name: fraud-v1
    views: [card_activity, card_amounts]
    owner: fraud-ml
    accuracyFloor: 0.9
    aucFloor: 0.85
    reference: reference.json
    freshness: { maxAge: 2m }
`;

  it("YAML and the TypeScript DSL give the same contracts", () => {
    const yaml = parseDefinitionsYaml(CONTRACT_YAML);
    const ts = defineDefinitions({
      sources: [
        {
          name: "transactions",
          topic: "payments.transactions",
          schema: "payments.transactions-value",
          compatibility: "BACKWARD",
          archive: "s3://archive/payments.transactions",
          entity: "card_id",
          timestamp: "event_time",
          owner: "payments-platform",
          onCall: { receiver: "payments-pager", labels: { service: "payments" } },
          freshness: { maxAge: "10m" },
        },
      ],
      views: [
        {
          name: "card_activity",
          source: "transactions",
          owner: "risk-features",
          onCall: { receiver: "risk-pager" },
          freshness: { maxAge: 300_000, onStale: "refuse" },
          features: [{ name: "txn_count_1h", op: "count", window: "1h", hop: "5m" }],
        },
        {
          name: "card_amounts",
          source: "transactions",
          features: [{ name: "amount_sum_1h", op: "sum", column: "amount", window: "1h", hop: "5m" }],
        },
      ],
      models: [
        {
          name: "fraud-v1",
          views: ["card_activity", "card_amounts"],
          owner: "fraud-ml",
          accuracyFloor: 0.9,
          aucFloor: 0.85,
          reference: "reference.json",
          freshness: { maxAge: "2m" },
        },
      ],
    });
    expect(JSON.parse(JSON.stringify(ts))).toEqual(JSON.parse(JSON.stringify(yaml)));
    expect(yaml.sources[0]).toMatchObject({
      compatibility: "BACKWARD",
      owner: "payments-platform",
      onCall: { receiver: "payments-pager", labels: { service: "payments" } },
      freshnessMs: 600_000,
    });
    expect(yaml.models).toEqual([
      {
        name: "fraud-v1",
        views: ["card_activity", "card_amounts"],
        owner: "fraud-ml",
        accuracyFloor: 0.9,
        aucFloor: 0.85,
        reference: "reference.json",
        freshnessMs: 120_000,
      },
    ]);
  });

  it("a view's SLA is the tightest of its own, its source's and its models', with the view's policy", () => {
    const defs = parseDefinitionsYaml(CONTRACT_YAML);
    expect(defs.views[0]!.freshness).toEqual({
      maxAgeMs: 120_000,
      onStale: "refuse",
      from: "model fraud-v1",
    });
    expect(defs.views[1]!.freshness).toEqual({ maxAgeMs: 120_000, onStale: "serve", from: "model fraud-v1" });
    const noModel = parseDefinitionsYaml(CONTRACT_YAML.split("models:")[0]!);
    expect(noModel.views[0]!.freshness).toEqual({ maxAgeMs: 300_000, onStale: "refuse", from: "view" });
    expect(noModel.views[1]!.freshness).toEqual({ maxAgeMs: 600_000, onStale: "serve", from: "source" });
  });

  it("owners, routes and SLAs are not part of the view version", () => {
    const bare = CONTRACT_YAML.replace(/^ {4}(owner|onCall|freshness|compatibility|archive):.*\n/gm, "");
    expect(bare).not.toContain("owner: risk");
    const a = parseDefinitionsYaml(CONTRACT_YAML);
    const b = parseDefinitionsYaml(bare);
    expect(b.views.map((v) => v.version)).toEqual(a.views.map((v) => v.version));
    expect(b.views[0]!.owner).toBeUndefined();
  });

  it("lists what lacks an owner", () => {
    expect(unowned(parseDefinitionsYaml(CONTRACT_YAML))).toEqual([{ kind: "view", name: "card_amounts" }]);
  });

  it("names each bad contract field", () => {
    const bad = CONTRACT_YAML.replace("compatibility: BACKWARD", "compatibility: SIDEWAYS")
      .replace("labels: { service: payments }", "labels: { 0bad: x }")
      .replace("onCall: { receiver: risk-pager }", "onCall: {}")
      .replace("onStale: refuse", "onStale: ignore")
      .replace("accuracyFloor: 0.9", "accuracyFloor: 90")
      .replace("views: [card_activity, card_amounts]", "views: [card_activity, nope]")
      .replace("freshness: { maxAge: 2m }", "freshness: { maxAge: 2x }");
    const issues = issuesOf(() => parseDefinitionsYaml(bad)).map((i) => i.replace(/ \(line \d+\)$/, ""));
    expect(issues).toEqual([
      expect.stringMatching(/^sources\[0\]\.compatibility: "SIDEWAYS" is not one of BACKWARD, /),
      "sources[0].onCall.labels.0bad: is not a Prometheus label name",
      "views[0].onCall: needs a receiver or labels",
      'views[0].freshness.onStale: "ignore" is not serve or refuse',
      'models[0].views[1]: unknown view "nope"',
      "models[0].accuracyFloor: must be a number from 0 to 1",
      'models[0].freshness.maxAge: "2x" is not a duration (<int><ms|s|m|h|d>)',
    ]);
  });
});

describe("SLOs", () => {
  const base = `
sources:
  - { name: tx, topic: t, entity: card_id, timestamp: ts }
views:
  - { name: card, source: tx, owner: risk, onCall: { receiver: risk-pager }, features: [{ name: n, op: count, window: 1h }] }
models:
  - { name: fraud-v1, views: [card], owner: fraud-ml, accuracyFloor: 0.9 }
  - { name: no-floor, views: [card] }
slos:
`;
  it("takes the subject's owner and route unless the SLO names its own; window defaults to 28d", () => {
    const defs = parseDefinitionsYaml(`${base}
  - { name: fresh, kind: freshness, view: card, threshold: 2m, objective: 0.99 }
  - { name: acc, kind: accuracy, model: fraud-v1, objective: 0.95, window: 7d, owner: ml-oncall }
`);
    expect(defs.slos).toEqual([
      {
        name: "fresh",
        kind: "freshness",
        objective: 0.99,
        windowMs: 28 * 86_400_000,
        thresholdMs: 120_000,
        view: "card",
        owner: "risk",
        onCall: { receiver: "risk-pager", labels: {} },
      },
      {
        name: "acc",
        kind: "accuracy",
        objective: 0.95,
        windowMs: 7 * 86_400_000,
        model: "fraud-v1",
        owner: "ml-oncall",
      },
    ]);
  });

  it("names each bad SLO field", () => {
    const issues = issuesOf(() =>
      parseDefinitionsYaml(`${base}
  - { name: a, kind: speed, objective: 0.99 }
  - { name: b, kind: latency, objective: 99 }
  - { name: c, kind: freshness, objective: 0.9, threshold: 1m }
  - { name: d, kind: accuracy, model: no-floor, objective: 0.9, threshold: 1m }
`),
    ).map((i) => i.replace(/ \(line \d+\)$/, ""));
    expect(issues).toEqual([
      'slos[0].kind: "speed" is not one of freshness, latency, availability, accuracy',
      "slos[1].objective: must be a number between 0 and 1 (exclusive), e.g. 0.99",
      "slos[1].threshold: is required for a latency SLO",
      "slos[2].view: is required",
      "slos[3].threshold: only freshness and latency SLOs take a threshold",
      'slos[3].model: model "no-floor" has no accuracyFloor to hold',
    ]);
  });
});
