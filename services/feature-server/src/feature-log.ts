/**
 * Sampled feature logging: a share of served vectors goes to the served-features topic (for the
 * consistency check and drift). Off the critical path: a request only pushes records onto a bounded
 * queue; a timer sends them in batches, and a full queue drops (and counts) new samples.
 */
import { randomUUID } from "node:crypto";
import type { ServedFeaturesRecord } from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import type { ServerMetrics } from "./metrics.js";
import type { FeatureResponse } from "./serve.js";

/** Where records go: the Kafka topic in production (see main.ts), anything else in-process. */
export interface FeatureLogSink {
  send(records: ServedFeaturesRecord[]): Promise<void>;
  close?(): Promise<void>;
}

export interface FeatureLoggerOptions {
  sink: FeatureLogSink;
  sampleRate: number;
  maxQueue: number;
  flushIntervalMs: number;
  metrics: ServerMetrics;
  logger: Logger;
  random?: () => number;
}

// The Avro map's value union has no boolean or nested list: keep the information as text.
function scalar(value: unknown): null | number | string {
  if (value === null || value === undefined) return null;
  if (typeof value === "number" || typeof value === "string") return value;
  return typeof value === "boolean" ? String(value) : JSON.stringify(value);
}

function avroValue(value: unknown): ServedFeaturesRecord["values"][string] {
  return Array.isArray(value) ? value.map(scalar) : scalar(value);
}

export class FeatureLogger {
  private queue: ServedFeaturesRecord[] = [];
  private readonly timer: NodeJS.Timeout;
  private sending: Promise<void> = Promise.resolve();
  private readonly random: () => number;

  constructor(private readonly options: FeatureLoggerOptions) {
    this.random = options.random ?? Math.random;
    this.timer = setInterval(() => this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  /** Samples per (entity, view) vector of a response. Cheap when nothing is sampled. */
  offer(response: FeatureResponse): void {
    const { sampleRate, maxQueue, metrics } = this.options;
    let requestId: string | undefined;
    const servedAt = Date.now();
    for (const group of Object.values(response.entities)) {
      for (const row of group.results) {
        if (this.random() >= sampleRate) continue;
        requestId ??= randomUUID();
        // One record per view of the vector: the columns of each view, by feature name.
        const byView = new Map<string, ServedFeaturesRecord["values"]>();
        group.features.forEach((name, c) => {
          const colon = name.indexOf(":");
          const view = name.slice(0, colon);
          let values = byView.get(view);
          if (!values) {
            values = {};
            byView.set(view, values);
          }
          values[name.slice(colon + 1)] = avroValue(row.values[c]);
        });
        for (const [view, values] of byView) {
          if (this.queue.length >= maxQueue) {
            metrics.featureLog.inc({ outcome: "dropped" });
            continue;
          }
          this.queue.push({
            request_id: requestId,
            view,
            version: response.views[view]!.version,
            entity: row.id,
            as_of: response.asOf,
            values,
            served_at: servedAt,
          });
        }
      }
    }
  }

  /** Sends what is queued (one send at a time, in order). */
  flush(): Promise<void> {
    if (this.queue.length === 0) return this.sending;
    const batch = this.queue;
    this.queue = [];
    this.sending = this.sending.then(() =>
      this.options.sink.send(batch).then(
        () => void this.options.metrics.featureLog.inc({ outcome: "sent" }, batch.length),
        (error) => {
          this.options.metrics.featureLog.inc({ outcome: "failed" }, batch.length);
          this.options.logger.warn(
            { err: error, records: batch.length },
            "feature log: send failed; records dropped",
          );
        },
      ),
    );
    return this.sending;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    await this.options.sink.close?.();
  }
}
