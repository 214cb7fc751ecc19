/**
 * An alert's place in a trace. The records of a window carry the trace context of the stream
 * processor's flush that computed them; the alert names the newest one (trace_id, span_id). When
 * this worker traces too, the alert gets a span of its own in that trace, and names that instead.
 */
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from "@opentelemetry/api";
import type { DriftAlertRecord } from "@tessera/kafka";
import { tracingEnabled } from "@tessera/runtime/tracing";

const tracer = trace.getTracer("tessera.drift-worker");

/** Adds the alert's span (a child of its window's record) and points span_id at it; in place. */
export function traceAlert(alert: DriftAlertRecord): void {
  if (!alert.trace_id || !alert.span_id || !tracingEnabled()) return;
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: alert.trace_id,
    spanId: alert.span_id,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
  const span = tracer.startSpan(
    `drift alert ${alert.status.toLowerCase()}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        "tessera.alert.id": alert.alert_id,
        "tessera.alert.kind": alert.kind,
        "tessera.alert.severity": alert.severity,
        "tessera.alert.subject": alert.subject,
        "tessera.alert.statistic": alert.statistic,
        "tessera.alert.value": alert.value,
      },
    },
    parent,
  );
  span.end();
  // Windows remember sampled contexts only, so under the parent-based sampler the span is recorded.
  if (span.spanContext().traceFlags & TraceFlags.SAMPLED) alert.span_id = span.spanContext().spanId;
}
