/**
 * Prometheus and Grafana config: every PromQL expression (dashboard panels and alert rules) parses
 * with Prometheus' own grammar (@prometheus-io/lezer-promql) and names only metrics and labels that
 * the services really register (read from their source), so a renamed metric breaks this test, not
 * the on-call's dashboard. Scrape targets match the compose services and their ports.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { sloRules } from "../../services/cli/src/slo/rules.js";
import { type Doc, readYaml, repoPath } from "./support.js";

interface Metric {
  type: "Counter" | "Gauge" | "Histogram" | "Summary";
  labels: string[];
  file: string;
}

/** Metrics registered with prom-client in libs/ and services/ source: name → type and label names. */
function registeredMetrics(): Map<string, Metric> {
  const metrics = new Map<string, Metric>();
  const sources = ["libs", "services"].flatMap((top) =>
    readdirSync(repoPath(top)).flatMap((pkg) => {
      const src = repoPath(top, pkg, "src");
      try {
        return readdirSync(src, { recursive: true, encoding: "utf8" })
          .filter((f) => f.endsWith(".ts"))
          .map((f) => join(src, f));
      } catch {
        return []; // a package without src/ registers nothing
      }
    }),
  );
  const construction = /new (Counter|Gauge|Histogram|Summary)(?:<[^>]*>)?\(\{([\s\S]*?)\}\)/g;
  for (const file of sources) {
    for (const [, type, body] of readFileSync(file, "utf8").matchAll(construction)) {
      const name = /name:\s*"([a-z_:][a-z0-9_:]*)"/.exec(body!)?.[1];
      if (!name) continue;
      const labels = /labelNames:\s*\[([^\]]*)\]/.exec(body!)?.[1] ?? "";
      metrics.set(name, {
        type: type as Metric["type"],
        labels: [...labels.matchAll(/"([^"]+)"/g)].map((m) => m[1]!),
        file: file.slice(repoPath().length + 1),
      });
    }
  }
  return metrics;
}

/** Labels every scraped series has, whatever the service registered. */
const targetLabels = ["job", "instance"];
/** Series Prometheus itself or prom-client's default metrics provide. */
const builtIn = (name: string) => name === "up" || /^(process|nodejs)_/.test(name);

/**
 * The problems of one PromQL expression: syntax errors, unknown metrics, unknown labels. `recorded`:
 * series recording rules produce (name → their labels), usable besides the registered metrics.
 */
function promqlProblems(
  expr: string,
  metrics: Map<string, Metric>,
  recorded: Map<string, string[]> = new Map(),
): string[] {
  const problems: string[] = [];
  const tree = parser.parse(expr);
  const text = (node: { from: number; to: number }) => expr.slice(node.from, node.to);
  /** The series a selector names and the labels it may be matched or grouped by. */
  const resolve = (name: string): string[] | undefined => {
    if (builtIn(name)) return targetLabels;
    const rule = recorded.get(name);
    if (rule) return rule;
    for (const [registered, metric] of metrics) {
      const parts =
        metric.type === "Histogram"
          ? ["_bucket", "_sum", "_count"]
          : metric.type === "Summary"
            ? ["", "_sum", "_count"]
            : [""];
      for (const suffix of parts) {
        if (registered + suffix === name) {
          return [
            ...metric.labels,
            ...targetLabels,
            ...(suffix === "_bucket"
              ? ["le"]
              : suffix === "" && metric.type === "Summary"
                ? ["quantile"]
                : []),
          ];
        }
      }
    }
    return undefined;
  };
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) problems.push(`syntax error at ${node.from}: ${expr}`);
      if (node.name === "VectorSelector") {
        const name = text(node.node.getChild("Identifier") ?? node.node);
        const allowed = resolve(name);
        if (!allowed) {
          problems.push(`unknown metric ${name}`);
          return;
        }
        for (const matcher of node.node.getChild("LabelMatchers")?.getChildren("UnquotedLabelMatcher") ??
          []) {
          const label = text(matcher.getChild("LabelName")!);
          if (!allowed.includes(label)) problems.push(`${name} has no label ${label}`);
        }
      }
      if (node.name === "AggregateExpr") {
        const grouping = node.node.getChild("AggregateModifier")?.getChild("GroupingLabels");
        if (!grouping) return;
        const inside: string[] = [];
        node.node.cursor().iterate((child) => {
          if (child.name === "VectorSelector")
            inside.push(...(resolve(text(child.node.getChild("Identifier")!)) ?? []));
        });
        for (const label of grouping.getChildren("LabelName").map(text)) {
          if (!inside.includes(label))
            problems.push(`grouping by ${label}, which no series in ${text(node)} has`);
        }
      }
    },
  });
  return problems;
}

const metrics = registeredMetrics();
const dashboard = JSON.parse(readFileSync(repoPath("deploy/grafana/dashboards/tessera.json"), "utf8")) as Doc;
const panels = (dashboard["panels"] as Doc[]).filter((p) => p["type"] !== "row");
const panelExprs = panels.flatMap((p) =>
  (p["targets"] as Doc[]).map((t) => ({ panel: p["title"], expr: t["expr"] as string })),
);
const alertRules = (readYaml(repoPath("deploy/prometheus/alerts.yml"))["groups"] as Doc[]).flatMap(
  (g) => g["rules"] as Doc[],
);
const compose = readYaml(repoPath("docker-compose.yml"));

describe("metric catalogue", () => {
  it("reads the metrics the services register from their source", () => {
    // The parser of this test is itself under test: known metrics, types and labels must come out.
    expect(metrics.get("tessera_processor_freshness_seconds")).toMatchObject({ type: "Histogram" });
    expect(metrics.get("tessera_dead_letters_total")).toMatchObject({
      type: "Counter",
      labels: ["topic", "reason"],
    });
    expect(metrics.get("tessera_drift_statistic")?.labels).toContain("statistic");
  });

  it("catches a syntax error, a renamed metric, a wrong label and a grouping label no series has", () => {
    expect(
      promqlProblems("sum by (topic (rate(tessera_processor_events_in_total[1m]))", metrics),
    ).not.toEqual([]);
    expect(promqlProblems("rate(tessera_processor_events_total[1m])", metrics)).toEqual([
      "unknown metric tessera_processor_events_total",
    ]);
    expect(promqlProblems('tessera_drift_statistic{stat="psi"}', metrics)).toEqual([
      "tessera_drift_statistic has no label stat",
    ]);
    expect(promqlProblems("sum by (view) (rate(tessera_processor_events_in_total[1m]))", metrics)).toEqual([
      "grouping by view, which no series in sum by (view) (rate(tessera_processor_events_in_total[1m])) has",
    ]);
    expect(
      promqlProblems(
        "histogram_quantile(0.99, sum by (le) (rate(tessera_processor_freshness_seconds_bucket[5m])))",
        metrics,
      ),
    ).toEqual([]);
  });
});

describe("Grafana dashboard", () => {
  it("every panel query parses and uses registered metrics and labels", () => {
    const problems = panelExprs.flatMap(({ panel, expr }) =>
      promqlProblems(expr, metrics).map((p) => `${panel}: ${p}`),
    );
    expect(problems).toEqual([]);
  });

  it("shows freshness, throughput, lag, serving latency and drift", () => {
    const all = panelExprs.map((p) => p.expr).join("\n");
    for (const metric of [
      "tessera_processor_freshness_seconds_bucket",
      "tessera_freshness_seconds",
      "tessera_processor_events_in_total",
      "tessera_processor_consumer_lag",
      "tessera_feature_server_request_duration_seconds_bucket",
      "tessera_drift_statistic",
      "tessera_drift_severity",
      "tessera_model_accuracy",
    ]) {
      expect(all).toContain(metric);
    }
    // Every service contributes at least one panel.
    for (const prefix of [
      "tessera_processor_",
      "tessera_archiver_",
      "tessera_feature_server_",
      "tessera_drift_",
    ]) {
      expect(all, prefix).toContain(prefix);
    }
  });

  it("uses the provisioned datasource, unique panel ids, and panels that do not overlap", () => {
    const datasource = readYaml(repoPath("deploy/grafana/provisioning/datasources/prometheus.yml"))[
      "datasources"
    ][0];
    for (const p of panels) expect(p["datasource"]["uid"], p["title"]).toBe(datasource["uid"]);
    const ids = (dashboard["panels"] as Doc[]).map((p) => p["id"]);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const p of dashboard["panels"] as Doc[]) {
      const { x, y, w, h } = p["gridPos"];
      expect(x + w, p["title"]).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const owner = cells.get(`${i},${j}`);
          expect(owner, `${p["title"]} overlaps ${owner}`).toBeUndefined();
          cells.set(`${i},${j}`, p["title"]);
        }
      }
    }
  });

  it("is where the compose file's Grafana provisioning loads dashboards from", () => {
    const grafana = compose["services"]["grafana"];
    const provider = readYaml(repoPath("deploy/grafana/provisioning/dashboards/tessera.yml"))["providers"][0];
    expect(grafana["volumes"]).toContain(`./deploy/grafana/dashboards:${provider["options"]["path"]}:ro`);
    expect(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).toBe(
      `${provider["options"]["path"]}/tessera.json`,
    );
    const datasource = readYaml(repoPath("deploy/grafana/provisioning/datasources/prometheus.yml"))[
      "datasources"
    ][0];
    expect(datasource["url"]).toBe(
      `http://prometheus:${compose["services"]["prometheus"]["ports"][0].split(":").at(-1)}`,
    );
  });
});

describe("Prometheus", () => {
  it("every alert rule parses, uses registered metrics and labels, and says what is wrong", () => {
    expect(alertRules.length).toBeGreaterThan(0);
    for (const rule of alertRules) {
      expect(promqlProblems(rule["expr"], metrics), rule["alert"]).toEqual([]);
      expect(rule["alert"]).toMatch(/^Tessera[A-Za-z]+$/);
      expect(["warning", "critical"]).toContain(rule["labels"]["severity"]);
      expect(rule["annotations"]["summary"], rule["alert"]).toBeTruthy();
      if (rule["for"]) expect(rule["for"]).toMatch(/^\d+[smh]$/);
    }
  });

  it("the Prometheus Operator component ships the same alert rules", () => {
    const rule = readYaml(repoPath("k8s/components/prometheus-operator/prometheus-rule.yaml"));
    expect(rule["kind"]).toBe("PrometheusRule");
    expect(rule["spec"]["groups"]).toEqual(readYaml(repoPath("deploy/prometheus/alerts.yml"))["groups"]);
  });

  it("scrapes every Tessera service of the compose file on the port its config listens on", () => {
    const config = readYaml(repoPath("deploy/prometheus/prometheus.yml"));
    expect(config["rule_files"]).toEqual(["alerts.yml", "slos.yml"]);
    const scraped = Object.fromEntries(
      (config["scrape_configs"] as Doc[]).map((job) => [
        job["job_name"],
        job["static_configs"][0]["targets"],
      ]),
    );
    const listeners: Record<string, string> = {
      "stream-processor": "ops",
      archiver: "ops",
      "feature-server": "http",
      "drift-worker": "http",
    };
    for (const [service, listener] of Object.entries(listeners)) {
      const args = compose["services"][service]["command"] as string[];
      const file = repoPath("k8s/base/config", args[2]!.replace("/etc/tessera/", ""));
      expect(scraped[service], service).toEqual([`${service}:${readYaml(file)[listener]["port"]}`]);
    }
    // The service-down alert watches exactly these jobs.
    const down = alertRules.find((r) => r["alert"] === "TesseraServiceDown")!;
    expect(down["expr"]).toContain(`job=~"${Object.keys(listeners).join("|")}"`);
  });
});

describe("SLO rules (tessera slo rules)", () => {
  const definitions = parseDefinitionsYaml(readFileSync(repoPath("examples/payments/features.yaml"), "utf8"));
  const groups = sloRules(definitions);
  const rules = groups.flatMap((g) => g.rules);

  it("every generated expression parses and uses registered metrics or series recorded before it", () => {
    const recorded = new Map<string, string[]>();
    const problems: string[] = [];
    for (const rule of rules) {
      for (const p of promqlProblems(rule.expr, metrics, recorded))
        problems.push(`${rule.record ?? rule.alert}: ${p}`);
      if (rule.record) recorded.set(rule.record, Object.keys(rule.labels ?? {}));
    }
    expect(problems).toEqual([]);
    expect(recorded.has("slo:sli_error:ratio_rate5m")).toBe(true);
    // A series no rule records is caught.
    expect(promqlProblems('slo:sli_error:ratio_rate4h{slo="x"}', metrics, recorded)).toEqual([
      "unknown metric slo:sli_error:ratio_rate4h",
    ]);
  });

  it("pages on the SRE workbook's burn rates (28-day window: 13.44 over 1h/5m, 5.6 over 6h/30m), tickets on 2.8 and 0.93", () => {
    const latency = rules.filter((r) => r.alert && r.labels?.["slo"] === "serving_latency");
    expect(latency.map((r) => [r.labels!["severity"], r.labels!["burn_window"]])).toEqual([
      ["critical", "1h/5m"],
      ["critical", "6h/30m"],
      ["warning", "1d/2h"],
      ["warning", "3d/6h"],
    ]);
    // Threshold = burn rate × (1 − objective 0.99), both windows.
    expect(latency.map((r) => r.expr.match(/> ([\d.]+)/g))).toEqual([
      ["> 0.1344", "> 0.1344"],
      ["> 0.056", "> 0.056"],
      ["> 0.028", "> 0.028"],
      ["> 0.00933333", "> 0.00933333"],
    ]);
    for (const alert of rules.filter((r) => r.alert)) {
      expect(alert.alert).toMatch(/^Tessera[A-Za-z]+$/);
      expect(alert.annotations?.["summary"]).toBeTruthy();
    }
  });

  it("every alert carries its owner's labels for Alertmanager routing", () => {
    const byslo = (name: string) => rules.find((r) => r.alert && r.labels?.["slo"] === name)!.labels;
    expect(byslo("fraud_accuracy")).toMatchObject({ team: "fraud-ml", oncall: "fraud-ml-pager", tier: "1" });
    expect(byslo("card_features_fresh")).toMatchObject({
      team: "risk-features",
      oncall: "risk-features-pager",
    });
  });

  it("deploy/prometheus/slos.yml is what the generator makes from examples/payments, and Prometheus loads it", () => {
    const committed = readYaml(repoPath("deploy/prometheus/slos.yml"));
    expect(committed).toEqual(JSON.parse(JSON.stringify({ groups })));
    expect(readYaml(repoPath("deploy/prometheus/prometheus.yml"))["rule_files"]).toContain("slos.yml");
    expect(stringify({ groups }).length).toBeGreaterThan(0);
  });
});
