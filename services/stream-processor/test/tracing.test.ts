/**
 * The flush spans' bookkeeping, with an in-memory exporter: links come from sampled records only,
 * are capped, survive a failed flush into the retried one, and FeatureUpdates carry the flush's
 * context. With no tracer provider nothing is recorded and records pass through untouched.
 */
import { trace } from "@opentelemetry/api";
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-node";
import { spanContextFromHeaders, traceHeadersOf } from "@tessera/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlushTracing, MAX_FLUSH_LINKS } from "../src/tracing.js";

const record = (offset: number, sampled: boolean | null) => ({
  offset: String(offset),
  headers:
    sampled === null
      ? {}
      : traceHeadersOf({
          traceId: offset.toString(16).padStart(32, "a"),
          spanId: offset.toString(16).padStart(16, "b"),
          traceFlags: sampled ? 1 : 0,
        }),
});
const partition = () => ({ topic: "payments", partition: 3, applied: 0, writes: { length: 7 } });

describe("flush tracing off", () => {
  it("records nothing and leaves FeatureUpdates as they are", () => {
    const tracing = new FlushTracing("g");
    const part = partition();
    tracing.collect(part, [record(1, true)]);
    const span = tracing.begin(part);
    const updates = [{ key: "k", value: Buffer.from("v") }];
    expect(span.headers(updates)).toBe(updates);
    span.end();
  });
});

describe("flush tracing on", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  beforeAll(() => provider.register());
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
  });

  it("links the sampled records, at most MAX_FLUSH_LINKS, and stamps the flush on FeatureUpdates", () => {
    const tracing = new FlushTracing("tessera-processor-payments");
    const part = partition();
    const records = Array.from({ length: 300 }, (_, i) =>
      record(i + 1, i % 2 === 0 ? true : i % 3 === 0 ? false : null),
    );
    tracing.collect(part, records.slice(0, 150));
    tracing.collect(part, records.slice(150));
    const span = tracing.begin(part);
    const stamped = span.headers<{ key: string; value: Buffer; headers?: Record<string, string> }>([
      { key: "card-1", value: Buffer.from("x") },
    ]);
    span.end();
    const [flush] = exporter.getFinishedSpans();
    expect(flush!.name).toBe("payments flush");
    expect(flush!.links).toHaveLength(MAX_FLUSH_LINKS);
    // The first sampled records in log order: offsets 1, 3, 5, …
    expect(flush!.links[0]!.attributes?.["messaging.kafka.offset"]).toBe(1);
    expect(flush!.links[1]!.attributes?.["messaging.kafka.offset"]).toBe(3);
    expect(flush!.attributes["messaging.batch.message_count"]).toBe(300);
    expect(flush!.attributes["tessera.unlinked_sampled_events"]).toBe(150 - MAX_FLUSH_LINKS);
    expect(flush!.attributes["tessera.states"]).toBe(7);
    const context = spanContextFromHeaders(stamped[0]!.headers);
    expect(context).toMatchObject({
      traceId: flush!.spanContext().traceId,
      spanId: flush!.spanContext().spanId,
    });
    exporter.reset();
  });

  it("a failed flush hands its links to the retry", () => {
    const tracing = new FlushTracing("g");
    const part = partition();
    tracing.collect(part, [record(1, true), record(2, true)]);
    const failed = tracing.begin(part);
    failed.end(new Error("store down"));
    tracing.collect(part, [record(3, true)]); // more records applied before the retry
    tracing.begin(part).end();
    const [first, retry] = exporter.getFinishedSpans();
    expect(first!.status.code).toBe(2); // ERROR
    expect(first!.events.map((e) => e.name)).toContain("exception");
    expect(retry!.links.map((l) => l.attributes?.["messaging.kafka.offset"])).toEqual([1, 2, 3]);
    expect(retry!.attributes["messaging.batch.message_count"]).toBe(3);
  });
});
