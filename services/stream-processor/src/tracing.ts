/**
 * The stream processor's part of a trace. A flush applies many events of many traces, so it is not
 * a child of any of them: each flush is a CONSUMER span of its own, linked to the sampled trace
 * contexts its records carried (W3C `traceparent` headers, set by TesseraProducer or any
 * OpenTelemetry-instrumented Kafka client), and the FeatureUpdate records it publishes carry the
 * flush's context. A flush linked to a sampled event is always recorded (see the runtime's sampler).
 *
 * Kept out of the path modules: ingest.ts calls `collect`, flush.ts `begin`, `headers` and `end`.
 * With tracing off each is a single boolean check.
 */
import { context, type Link, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  injectTraceHeaders,
  type MessageHeaders,
  spanContextFromHeaders,
  tracingEnabled,
} from "@tessera/runtime/tracing";

/** The SDK's default span link limit: links past it would be dropped anyway. */
export const MAX_FLUSH_LINKS = 128;

const tracer = trace.getTracer("tessera.stream-processor");

interface Consumed {
  offset: string;
  headers?: MessageHeaders;
}

/** What a flush span describes: one partition's flush (PartitionState in processor.ts). */
interface FlushedPartition {
  topic: string;
  partition: number;
  applied: number;
  writes: { length: number };
}

interface Pending {
  links: Link[];
  events: number;
  /** Sampled records beyond MAX_FLUSH_LINKS. */
  unlinked: number;
}

export interface FlushSpan {
  /** The records with the flush's trace context in their headers (the same array when not traced). */
  headers<T extends { headers?: MessageHeaders } | object>(records: T[]): T[];
  /** Ends the span; after an error the links wait for the retried flush. */
  end(error?: unknown): void;
}

const UNTRACED: FlushSpan = { headers: (records) => records, end: () => {} };

export class FlushTracing {
  private readonly enabled = tracingEnabled();
  /** Per PartitionState: links gathered since its last flush (dropped with the state). */
  private readonly pending = new WeakMap<object, Pending>();

  constructor(private readonly consumerGroup: string) {}

  /** Notes the sampled trace contexts of records about to be applied to `partition`'s state. */
  collect(partition: object, records: readonly Consumed[]): void {
    if (!this.enabled) return;
    let pending = this.pending.get(partition);
    if (!pending) {
      pending = { links: [], events: 0, unlinked: 0 };
      this.pending.set(partition, pending);
    }
    pending.events += records.length;
    for (const record of records) {
      if (record.headers?.["traceparent"] === undefined) continue;
      const parent = spanContextFromHeaders(record.headers);
      if (!parent || (parent.traceFlags & 1) === 0) continue;
      if (pending.links.length >= MAX_FLUSH_LINKS) {
        pending.unlinked++;
        continue;
      }
      pending.links.push({
        context: parent,
        attributes: { "messaging.kafka.offset": Number(record.offset) },
      });
    }
  }

  /** Starts the span of `partition`'s flush, linked to the records collected since the last one. */
  begin(partition: FlushedPartition): FlushSpan {
    if (!this.enabled) return UNTRACED;
    const pending = this.pending.get(partition as object);
    this.pending.delete(partition as object);
    const span = tracer.startSpan(`${partition.topic} flush`, {
      kind: SpanKind.CONSUMER,
      links: pending?.links ?? [],
      attributes: {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": partition.topic,
        "messaging.destination.partition.id": String(partition.partition),
        "messaging.consumer.group.name": this.consumerGroup,
        "messaging.batch.message_count": pending?.events ?? 0,
        "messaging.kafka.offset": partition.applied,
        "tessera.states": partition.writes.length,
        "tessera.unlinked_sampled_events": pending?.unlinked ?? 0,
      },
    });
    return new TracedFlush(span, () => pending && this.restore(partition as object, pending));
  }

  private restore(partition: object, pending: Pending): void {
    const newer = this.pending.get(partition);
    if (newer) {
      for (const link of newer.links) {
        if (pending.links.length < MAX_FLUSH_LINKS) pending.links.push(link);
        else pending.unlinked++;
      }
      pending.events += newer.events;
      pending.unlinked += newer.unlinked;
    }
    this.pending.set(partition, pending);
  }
}

class TracedFlush implements FlushSpan {
  private headersOfSpan?: MessageHeaders;

  constructor(
    private readonly span: Span,
    private readonly restore: () => void,
  ) {}

  headers<T extends { headers?: MessageHeaders } | object>(records: T[]): T[] {
    // Unsampled flushes propagate too: downstream spans then follow the same decision.
    this.headersOfSpan ??= injectTraceHeaders({}, trace.setSpan(context.active(), this.span));
    const headers = this.headersOfSpan;
    return records.map((r) => ({
      ...r,
      headers: { ...(r as { headers?: MessageHeaders }).headers, ...headers },
    }));
  }

  end(error?: unknown): void {
    if (error !== undefined) {
      this.span.recordException(error as Error);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      this.restore();
    }
    this.span.end();
  }
}
