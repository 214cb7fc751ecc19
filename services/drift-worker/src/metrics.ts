import { Counter, Gauge, type Registry } from "prom-client";

/** Prometheus series of the drift worker: every statistic of the latest window, per subject. */
export function workerMetrics(registry: Registry) {
  const registers = [registry];
  return {
    statistic: new Gauge({
      name: "tessera_drift_statistic",
      help: "Latest window's drift statistic (psi, js, ks, ks_p, wasserstein, chi_squared, chi_squared_p, cramers_v, null_rate) per subject.",
      labelNames: ["subject", "dataset", "statistic"],
      registers,
    }),
    severity: new Gauge({
      name: "tessera_drift_severity",
      help: "Latest verdict per subject and kind: 0 ok, 1 warn, 2 critical.",
      labelNames: ["subject", "kind"],
      registers,
    }),
    windows: new Counter({
      name: "tessera_drift_windows_tested_total",
      help: "Windows tested against the reference, per dataset (view or model).",
      labelNames: ["dataset"],
      registers,
    }),
    freshness: new Gauge({
      name: "tessera_freshness_seconds",
      help: "Now minus the newest event time seen, per source topic.",
      labelNames: ["source"],
      registers,
    }),
    lag: new Gauge({
      name: "tessera_consumer_lag",
      help: "Messages behind the end of the topic, per consumer group and topic.",
      labelNames: ["group", "topic"],
      registers,
    }),
    accuracy: new Gauge({
      name: "tessera_model_accuracy",
      help: "Accuracy of the latest window of labelled predictions, per model.",
      labelNames: ["model"],
      registers,
    }),
    auc: new Gauge({
      name: "tessera_model_auc",
      help: "ROC AUC of the latest window of labelled predictions, per model (binary labels with scores).",
      labelNames: ["model"],
      registers,
    }),
    alerts: new Counter({
      name: "tessera_alerts_total",
      help: "Alert records emitted, by kind and status (FIRING, RESOLVED).",
      labelNames: ["kind", "status"],
      registers,
    }),
    activeAlerts: new Gauge({
      name: "tessera_alerts_active",
      help: "Open incidents, by kind.",
      labelNames: ["kind"],
      registers,
    }),
    deliveryFailures: new Counter({
      name: "tessera_alert_delivery_failures_total",
      help: "Alert deliveries that failed (each attempt), by sink; `dropped` counts those given up.",
      labelNames: ["sink", "outcome"],
      registers,
    }),
    records: new Counter({
      name: "tessera_drift_records_total",
      help: "Records taken in, by input (features, predictions, labels).",
      labelNames: ["input"],
      registers,
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof workerMetrics>;
