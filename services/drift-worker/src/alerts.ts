/**
 * Alert delivery that never holds up the worker: each sink has its own queue, drained in the
 * background with retries and backoff. A sink that stays down loses its oldest alerts past
 * `maxQueue` (counted in tessera_alert_delivery_failures_total), never the worker's progress.
 */
import { readFileSync } from "node:fs";
import type { DriftAlertRecord, TesseraProducer } from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import { traceHeadersOf } from "@tessera/runtime/tracing";
import type { WorkerMetrics } from "./metrics.js";

/** The DriftAlert Avro schema, the same relative path from src/ and dist/. */
export const driftAlertSchema: object = JSON.parse(
  readFileSync(new URL("../../../schemas/avro/drift_alert.avsc", import.meta.url), "utf8"),
);

export interface AlertSink {
  readonly name: string;
  send(alert: DriftAlertRecord): Promise<void>;
}

/** An error a sink will not get past by retrying (a 4xx from the webhook). */
export class PermanentDeliveryError extends Error {
  override name = "PermanentDeliveryError";
}

/** DriftAlert records on the alert topic, keyed by subject (one partition per subject keeps order). */
export class KafkaAlertSink implements AlertSink {
  readonly name = "kafka";
  constructor(
    private readonly producer: TesseraProducer,
    private readonly topic: string,
  ) {}

  async send(alert: DriftAlertRecord): Promise<void> {
    // tracing: the record continues the window's trace (W3C traceparent), when it has one
    const headers =
      alert.trace_id && alert.span_id
        ? traceHeadersOf({ traceId: alert.trace_id, spanId: alert.span_id, traceFlags: 1 })
        : undefined;
    await this.producer.publish(this.topic, alert, { key: alert.subject, headers });
  }
}

const ALERT_NAMES: Record<DriftAlertRecord["kind"], string> = {
  FEATURE_DRIFT: "TesseraFeatureDrift",
  PREDICTION_DRIFT: "TesseraPredictionDrift",
  FRESHNESS: "TesseraDataFreshness",
  ACCURACY: "TesseraModelAccuracy",
};

/**
 * Alertmanager's POST /api/v2/alerts body. Labels identify the alert, so a RESOLVED carries the
 * labels its FIRING had (severity included) and sets endsAt. `owner`: the subject's owner labels
 * (owners.ts), which Alertmanager routes on; they never replace the alert's own.
 */
export function alertmanagerPayload(
  alert: DriftAlertRecord,
  fired: { severity: string; startsAt: number },
  generatorURL?: string,
  owner: Record<string, string> = {},
) {
  const resolved = alert.status === "RESOLVED";
  return [
    {
      labels: {
        ...owner,
        alertname: ALERT_NAMES[alert.kind],
        service: "tessera-drift-worker",
        kind: alert.kind,
        subject: alert.subject,
        statistic: alert.statistic,
        severity: fired.severity === "CRITICAL" ? "critical" : "warning",
      },
      annotations: {
        summary: alert.message,
        value: String(alert.value),
        threshold: String(alert.threshold),
        alert_id: alert.alert_id,
        reference: alert.reference,
        runbook: "docs/operations.md",
        ...(alert.trace_id ? { trace_id: alert.trace_id, span_id: alert.span_id ?? "" } : {}),
      },
      startsAt: new Date(fired.startsAt).toISOString(),
      ...(resolved ? { endsAt: new Date(alert.at).toISOString() } : {}),
      ...(generatorURL ? { generatorURL } : {}),
    },
  ];
}

export class WebhookSink implements AlertSink {
  readonly name = "webhook";
  /** alert_id → severity it fired with, so the RESOLVED matches the FIRING's labels. */
  private readonly fired = new Map<string, { severity: string; startsAt: number }>();

  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    /** Where Alertmanager links to: the worker's /v1/status, once its server listens. */
    public generatorURL?: string,
    /** Owner labels of an alert's subject (from the definitions). */
    private readonly ownerLabels: (alert: DriftAlertRecord) => Record<string, string> = () => ({}),
  ) {}

  /** An incident that fired before a restart: its RESOLVED must carry the labels it fired with. */
  remember(firing: DriftAlertRecord): void {
    if (!this.fired.has(firing.alert_id))
      this.fired.set(firing.alert_id, { severity: firing.severity, startsAt: firing.at });
  }

  async send(alert: DriftAlertRecord): Promise<void> {
    let fired = this.fired.get(alert.alert_id);
    if (alert.status === "FIRING" && !fired) {
      fired = { severity: alert.severity, startsAt: alert.at };
      this.fired.set(alert.alert_id, fired);
      if (this.fired.size > 10_000) this.fired.delete(this.fired.keys().next().value!);
    }
    const body = alertmanagerPayload(
      alert,
      fired ?? { severity: alert.severity, startsAt: alert.at },
      this.generatorURL,
      this.ownerLabels(alert),
    );
    const response = await fetch(this.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await response.body?.cancel();
    if (alert.status === "RESOLVED" && response.ok) this.fired.delete(alert.alert_id);
    if (response.status >= 400 && response.status < 500 && response.status !== 429) {
      throw new PermanentDeliveryError(`webhook ${this.url} answered ${response.status}`);
    }
    if (!response.ok) throw new Error(`webhook ${this.url} answered ${response.status}`);
  }
}

/** A sink for in-process use (the embedded demo, tests): a callback. */
export class CallbackSink implements AlertSink {
  constructor(
    readonly name: string,
    private readonly callback: (alert: DriftAlertRecord) => void | Promise<void>,
  ) {}
  async send(alert: DriftAlertRecord): Promise<void> {
    await this.callback(alert);
  }
}

interface Queue {
  sink: AlertSink;
  items: DriftAlertRecord[];
  draining?: Promise<void>;
}

export class AlertDispatcher {
  private readonly queues: Queue[];
  private stopped = false;
  private readonly wake = new AbortController();

  constructor(
    sinks: AlertSink[],
    private readonly options: {
      retries: number;
      maxQueue: number;
      initialBackoffMs?: number;
      logger?: Logger;
      metrics?: WorkerMetrics;
      /** Each (alert, sink) once it left the queue: delivered, or given up (dropped, permanent error). */
      onSettled?(alert: DriftAlertRecord, sink: string, delivered: boolean): void;
    },
  ) {
    this.queues = sinks.map((sink) => ({ sink, items: [] }));
  }

  get sinkNames(): string[] {
    return this.queues.map((q) => q.sink.name);
  }

  /** Queues the alert on every sink and returns at once. */
  publish(alert: DriftAlertRecord, only?: (sink: AlertSink) => boolean): void {
    if (this.stopped) return;
    for (const queue of this.queues) {
      if (only && !only(queue.sink)) continue;
      queue.items.push(alert);
      if (queue.items.length > this.options.maxQueue) {
        const dropped = queue.items.shift()!;
        this.options.onSettled?.(dropped, queue.sink.name, false);
        this.options.metrics?.deliveryFailures.inc({ sink: queue.sink.name, outcome: "dropped" });
        this.options.logger?.error(
          { sink: queue.sink.name, alert: dropped.alert_id },
          "alert queue full: dropped oldest",
        );
      }
      queue.draining ??= this.drain(queue).finally(() => {
        queue.draining = undefined;
      });
    }
  }

  /** Resolves when every queue is empty (or its sink gave up). */
  async flush(): Promise<void> {
    while (this.queues.some((q) => q.draining)) await Promise.all(this.queues.map((q) => q.draining));
  }

  /** Delivers what is queued (bounded by the caller's shutdown timeout), then takes no more. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.flush();
  }

  /** Stops at once: pending retries give up. */
  abort(): void {
    this.stopped = true;
    this.wake.abort();
  }

  private async drain(queue: Queue): Promise<void> {
    // The alert in flight has left the queue: maxQueue bounds the ones still waiting.
    for (let alert = queue.items.shift(); alert; alert = queue.items.shift())
      await this.deliver(queue.sink, alert);
  }

  private async deliver(sink: AlertSink, alert: DriftAlertRecord): Promise<void> {
    const delivered = await this.attempt(sink, alert);
    this.options.onSettled?.(alert, sink.name, delivered);
  }

  private async attempt(sink: AlertSink, alert: DriftAlertRecord): Promise<boolean> {
    const initial = this.options.initialBackoffMs ?? 500;
    for (let attempt = 0; ; attempt++) {
      try {
        await sink.send(alert);
        return true;
      } catch (error) {
        this.options.metrics?.deliveryFailures.inc({ sink: sink.name, outcome: "failed" });
        const permanent = error instanceof PermanentDeliveryError;
        if (permanent || attempt >= this.options.retries || this.wake.signal.aborted) {
          this.options.metrics?.deliveryFailures.inc({ sink: sink.name, outcome: "dropped" });
          this.options.logger?.error(
            { sink: sink.name, alert: alert.alert_id, attempts: attempt + 1, err: error },
            "alert not delivered",
          );
          return false;
        }
        this.options.logger?.warn(
          { sink: sink.name, attempt: attempt + 1, err: error },
          "alert delivery failed: retrying",
        );
        await sleep(Math.min(30_000, initial * 2 ** attempt) * (0.8 + Math.random() * 0.4), this.wake.signal);
      }
    }
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
