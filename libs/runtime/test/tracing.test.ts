import { context, SpanKind, TraceFlags, trace } from "@opentelemetry/api";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { type OtlpReceiver, startOtlpReceiver } from "../../../test/support/otlp-receiver.js";
import {
  extractTraceContext,
  injectTraceHeaders,
  setupTracing,
  spanContextFromHeaders,
  traceHeadersOf,
  tracingEnabled,
} from "../src/tracing.js";

const hexId = (bytes: number) =>
  fc
    .uint8Array({ minLength: bytes, maxLength: bytes })
    .map((b) => Buffer.from(b).toString("hex"))
    .filter((h) => !/^0+$/.test(h));

describe("trace context in Kafka headers", () => {
  it("traceparent round-trips for any valid ids and flags", () => {
    fc.assert(
      fc.property(hexId(16), hexId(8), fc.constantFrom(0, 1), (traceId, spanId, traceFlags) => {
        const headers = traceHeadersOf({ traceId, spanId, traceFlags });
        expect(spanContextFromHeaders(headers)).toEqual({ traceId, spanId, traceFlags, isRemote: true });
        // As kafkajs hands them to a consumer: Buffers.
        const buffers = { traceparent: Buffer.from(String(headers["traceparent"])) };
        expect(spanContextFromHeaders(buffers)?.traceId).toBe(traceId);
      }),
    );
  });

  it("refuses malformed or invalid traceparent values", () => {
    for (const bad of [
      "",
      "00-abc-def-01",
      `00-${"0".repeat(32)}-${"1".repeat(16)}-01`,
      `00-${"1".repeat(32)}-${"0".repeat(16)}-01`,
      `ff-${"1".repeat(32)}-${"1".repeat(16)}-01`,
      `00-${"A".repeat(32)}-${"1".repeat(16)}-01`,
    ]) {
      expect(spanContextFromHeaders({ traceparent: bad }), bad).toBeUndefined();
    }
    expect(spanContextFromHeaders(undefined)).toBeUndefined();
    expect(spanContextFromHeaders({ other: "x" })).toBeUndefined();
  });
});

describe("tracing off (the default)", () => {
  it("registers nothing and makes no spans", async () => {
    const handle = await setupTracing({ enabled: false, sampleRatio: 1 }, { serviceName: "t" });
    expect(handle.enabled).toBe(false);
    expect(tracingEnabled()).toBe(false);
    // With no provider the API's tracer is the no-op one, and injecting writes nothing.
    expect(injectTraceHeaders({})).toEqual({});
    await handle.shutdown();
  });
});

describe("tracing on", () => {
  let receiver: OtlpReceiver;
  afterAll(async () => {
    await receiver?.close();
  });

  it("exports OTLP/protobuf spans; context crosses Kafka headers; a linked root is sampled at ratio 0", async () => {
    receiver = await startOtlpReceiver();
    const handle = await setupTracing(
      { enabled: true, endpoint: receiver.url, sampleRatio: 0 },
      { serviceName: "tessera-test" },
    );
    expect(tracingEnabled()).toBe(true);
    const tracer = trace.getTracer("tessera.test");

    // Ratio 0: a fresh root is not recorded...
    const unsampled = tracer.startSpan("dropped");
    expect(unsampled.isRecording()).toBe(false);
    unsampled.end();

    // ...but a span whose link is sampled is, and its context travels through headers.
    const upstream = { traceId: "1".repeat(32), spanId: "2".repeat(16), traceFlags: TraceFlags.SAMPLED };
    const flush = tracer.startSpan("flush", { kind: SpanKind.CONSUMER, links: [{ context: upstream }] });
    expect(flush.isRecording()).toBe(true);
    const headers = injectTraceHeaders({}, trace.setSpan(context.active(), flush));
    expect(spanContextFromHeaders(headers)?.spanId).toBe(flush.spanContext().spanId);
    const consumer = tracer.startSpan("consume", {}, extractTraceContext(headers));
    consumer.end();
    flush.end();
    await handle.flush();

    const spans = await receiver.waitFor((s) => s.some((x) => x.name === "consume"));
    expect(receiver.requests["application/x-protobuf"]).toBeGreaterThan(0);
    const byName = new Map(spans.map((s) => [s.name, s]));
    expect(byName.has("dropped")).toBe(false);
    const f = byName.get("flush")!;
    expect(f.service).toBe("tessera-test");
    expect(f.scope).toBe("tessera.test");
    expect(f.parentSpanId).toBe("");
    expect(f.links).toEqual([{ traceId: upstream.traceId, spanId: upstream.spanId, attributes: {} }]);
    const c = byName.get("consume")!;
    expect(c.traceId).toBe(f.traceId);
    expect(c.parentSpanId).toBe(f.spanId);

    await handle.shutdown();
    expect(tracingEnabled()).toBe(false);
  });
});
