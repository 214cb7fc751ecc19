/**
 * SLOs from the definitions → Prometheus recording rules and multi-window, multi-burn-rate alerts
 * (Google SRE workbook, "Alerting on SLOs"): an SLI error ratio recorded over 5m … 3d and over the
 * SLO window, and two pairs of alerts — page when the budget burns fast (2% of it in 1h, or 5% in
 * 6h, confirmed by the 5m / 30m window), ticket when it burns steadily (10% in 1d or 3d, confirmed
 * by 2h / 6h). Every alert carries its owner's labels so Alertmanager routes it. Pure: no I/O.
 */
import { FEATURE_ROUTES, LATENCY_BUCKETS, SERVED_AGE_BUCKETS } from "@tessera/feature-server";
import { type Definitions, formatDuration, type Slo } from "@tessera/transforms";

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  rules: Rule[];
}

/** The SLI error ratio of an SLO over a window, recorded as `slo:sli_error:ratio_rate<window>`. */
export const ERROR_RATIO = "slo:sli_error:ratio_rate";

const HOUR = 3_600_000;
const BURN_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/** [severity, long window, short window, share of the budget spent in the long window]. */
const ALERT_WINDOWS: Array<[string, string, string, number, number]> = [
  ["critical", "1h", "5m", HOUR, 0.02],
  ["critical", "6h", "30m", 6 * HOUR, 0.05],
  ["warning", "1d", "2h", 24 * HOUR, 0.1],
  ["warning", "3d", "6h", 72 * HOUR, 0.1],
];

/** Thrown for an SLO the metrics cannot measure; names the field. */
export class SloRuleError extends Error {}

const requests = `route=~"${FEATURE_ROUTES.join("|")}"`;
const FAILED = 'code=~"5..|UNAVAILABLE|INTERNAL|UNKNOWN|DEADLINE_EXCEEDED|DATA_LOSS"';

/** `le` label value of a histogram bound in seconds, as prom-client writes it. */
function bucket(slo: Slo, index: number, buckets: readonly number[], metric: string): string {
  const seconds = slo.thresholdMs! / 1000;
  if (!buckets.includes(seconds)) {
    throw new SloRuleError(
      `slos[${index}].threshold: ${formatDuration(slo.thresholdMs!)} is not a bucket of ${metric} (${buckets.map((b) => `${b}s`).join(", ")})`,
    );
  }
  return String(seconds);
}

/** The SLI error ratio over `w` (a PromQL duration) for rate-based SLOs. */
function errorRatio(slo: Slo, index: number, w: string, floor: number | undefined): string {
  switch (slo.kind) {
    case "freshness": {
      // Served age, not the processor's event-to-store histogram: a stopped processor observes
      // nothing there, while every request keeps measuring how old the served data has grown.
      const m = "tessera_feature_server_served_age_seconds";
      const le = bucket(slo, index, SERVED_AGE_BUCKETS, m);
      return `1 - (sum(rate(${m}_bucket{view="${slo.view}",le="${le}"}[${w}])) / sum(rate(${m}_count{view="${slo.view}"}[${w}])))`;
    }
    case "latency": {
      const m = "tessera_feature_server_request_duration_seconds";
      const le = bucket(slo, index, LATENCY_BUCKETS, m);
      return `1 - (sum(rate(${m}_bucket{${requests},le="${le}"}[${w}])) / sum(rate(${m}_count{${requests}}[${w}])))`;
    }
    case "availability": {
      const m = "tessera_feature_server_request_duration_seconds_count";
      return `sum(rate(${m}{${requests},${FAILED}}[${w}])) / sum(rate(${m}{${requests}}[${w}]))`;
    }
    case "accuracy":
      // Share of the window's minutes the model spent under its floor.
      return `1 - avg_over_time((tessera_model_accuracy{model="${slo.model}"} >= bool ${floor})[${w}:1m])`;
  }
}

/** PromQL duration of a window in ms: the largest unit that divides it. */
function promDuration(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", HOUR],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Owner labels of an alert: `team`, `oncall` (the receiver) and the route's own labels. */
function ownerLabels(slo: Slo): Record<string, string> {
  const labels: Record<string, string> = { ...(slo.onCall?.labels ?? {}) };
  if (slo.owner) labels["team"] = slo.owner;
  if (slo.onCall?.receiver) labels["oncall"] = slo.onCall.receiver;
  return labels;
}

const round = (n: number) => Number(n.toPrecision(6));

export function sloRules(definitions: Definitions): RuleGroup[] {
  return definitions.slos.flatMap((slo, index) => {
    const floor = slo.model ? definitions.models.find((m) => m.name === slo.model)?.accuracyFloor : undefined;
    const budget = round(1 - slo.objective);
    const window = promDuration(slo.windowMs);
    const sel = `{slo="${slo.name}"}`;
    const labels = { slo: slo.name };
    const recorded = [...BURN_WINDOWS, ...(BURN_WINDOWS.includes(window) ? [] : [window])];
    const sli: Rule[] = recorded.map((w) => ({
      record: `${ERROR_RATIO}${w}`,
      expr: errorRatio(slo, index, w, floor),
      labels,
    }));
    sli.push(
      { record: "slo:objective:ratio", expr: `vector(${slo.objective})`, labels },
      {
        record: "slo:error_budget_remaining:ratio",
        expr: `1 - (${ERROR_RATIO}${window}${sel} / ${budget})`,
        labels,
      },
      { record: "slo:burn_rate:ratio_rate1h", expr: `${ERROR_RATIO}1h${sel} / ${budget}`, labels },
    );
    const what = describe(slo, floor);
    const alerts: Rule[] = ALERT_WINDOWS.map(([severity, long, short, longMs, spent]) => {
      const burn = round((spent * slo.windowMs) / longMs);
      const limit = round(burn * budget);
      return {
        alert: "TesseraSLOErrorBudgetBurn",
        expr: `${ERROR_RATIO}${long}${sel} > ${limit} and ${ERROR_RATIO}${short}${sel} > ${limit}`,
        for: severity === "critical" ? "2m" : "15m",
        labels: { severity, ...ownerLabels(slo), slo: slo.name, burn_window: `${long}/${short}` },
        annotations: {
          summary: `SLO ${slo.name} (${what}) burns its ${window} error budget ${burn}× too fast over ${long}`,
          description: `${Math.round(spent * 100)}% of the budget is gone in ${long} at this rate; owner ${slo.owner ?? "none declared"}. Runbook: docs/operations.md#slos-and-burn-rate-alerts`,
        },
      };
    });
    return [
      { name: `tessera-slo-${slo.name}-sli`, rules: sli },
      { name: `tessera-slo-${slo.name}-alerts`, rules: alerts },
    ];
  });
}

function describe(slo: Slo, floor: number | undefined): string {
  const share = `${round(slo.objective * 100)}%`;
  switch (slo.kind) {
    case "freshness":
      return `${share} of ${slo.view} requests served data at most ${formatDuration(slo.thresholdMs!)} old`;
    case "latency":
      return `${share} of feature requests within ${formatDuration(slo.thresholdMs!)}`;
    case "availability":
      return `${share} of feature requests served`;
    case "accuracy":
      return `${slo.model} accuracy ≥ ${floor} ${share} of the time`;
  }
}
