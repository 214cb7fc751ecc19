/**
 * OpenTelemetry tracing for Tessera processes: `setupTracing` registers a tracer provider that
 * exports OTLP/HTTP (protobuf), OFF unless the config enables it, and W3C trace context travels in
 * Kafka headers (`traceparent`, `tracestate`). Metrics stay with prom-client.
 *
 * Code that creates spans checks `tracingEnabled()` first: with no provider registered it creates
 * no span objects at all (and the SDK is not even loaded). A provider registered by the embedding
 * application instead of ours counts too, so a producer team's own SDK receives our spans.
 *
 * Import from "@tessera/runtime/tracing" in libraries: it loads only @opentelemetry/api.
 */
import {
  type Context,
  context,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import type { Sampler } from "@opentelemetry/sdk-trace-node";
import type { JsonSchema } from "./config.js";

export interface TracingConfig {
  /** Export spans (default false: no provider, no span objects, no SDK loaded). */
  enabled: boolean;
  /** OTLP/HTTP traces URL; default OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else http://127.0.0.1:4318/v1/traces. */
  endpoint?: string;
  /** Extra export headers as `key=value,key2=value2` (default OTEL_EXPORTER_OTLP_HEADERS). */
  headers?: string;
  /** Share of new traces recorded (0..1). A span whose parent or any of whose links is sampled is always recorded. */
  sampleRatio: number;
}

/** The `tracing` section every service's configuration embeds (env: TESSERA_<SERVICE>_TRACING_*). */
export const tracingConfigSchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: "boolean", default: false, description: "Export OpenTelemetry traces over OTLP" },
    endpoint: { type: "string", minLength: 1, description: "OTLP/HTTP traces URL" },
    headers: { type: "string", description: "Export headers, key=value,key2=value2" },
    sampleRatio: {
      type: "number",
      minimum: 0,
      maximum: 1,
      default: 1,
      description: "Share of new traces recorded",
    },
  },
};

export interface Tracing {
  readonly enabled: boolean;
  /** Where spans go, when enabled. */
  readonly endpoint?: string;
  /** Exports what has ended so far. */
  flush(): Promise<void>;
  /** Exports what is left and unregisters the provider. */
  shutdown(): Promise<void>;
}

export interface SetupTracingOptions {
  /** The `service.name` resource attribute, e.g. tessera-feature-server. */
  serviceName: string;
  env?: NodeJS.ProcessEnv;
}

const OFF: Tracing = { enabled: false, flush: async () => {}, shutdown: async () => {} };
let current: Tracing | undefined;

/** The no-op provider the API delegates to while nothing is registered. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True when a tracer provider is registered (ours or the application's): only then make spans. */
export function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

function endpointOf(config: Partial<TracingConfig>, env: NodeJS.ProcessEnv): string {
  if (config.endpoint) return config.endpoint;
  if (env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];
  const base = env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  if (base) return `${base.replace(/\/+$/, "")}/v1/traces`;
  return "http://127.0.0.1:4318/v1/traces";
}

function parseHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (text ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at <= 0) continue;
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}

/**
 * Registers the process's tracer provider when `config.enabled`; otherwise does nothing. Once per
 * process: a second call returns the first one's handle (the embedded demo runs every service in one).
 */
export async function setupTracing(
  config: Partial<TracingConfig> | undefined,
  options: SetupTracingOptions,
): Promise<Tracing> {
  if (!config?.enabled) return OFF;
  if (current) return current;
  const env = options.env ?? process.env;
  const ratio = config.sampleRatio ?? 1;
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`tracing.sampleRatio: ${ratio} is not between 0 and 1`);
  const endpoint = endpointOf(config, env);
  // Loaded only when tracing is on: a service with tracing off never pays for the SDK.
  const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/exporter-trace-otlp-proto"),
    import("@opentelemetry/resources"),
  ]);
  const exporter = new OTLPTraceExporter({
    url: endpoint,
    headers: { ...parseHeaders(env["OTEL_EXPORTER_OTLP_HEADERS"]), ...parseHeaders(config.headers) },
  });
  const ratioSampler = new sdk.TraceIdRatioBasedSampler(ratio);
  // A new trace (a flush, an alert) that links to a sampled one is kept: one sampled event is
  // followed through every hop, whatever the ratio.
  const root: Sampler = {
    shouldSample(ctx, traceId, _name, _kind, _attributes, links) {
      if (links.some((l) => (l.context.traceFlags & TraceFlags.SAMPLED) !== 0))
        return { decision: sdk.SamplingDecision.RECORD_AND_SAMPLED };
      return ratioSampler.shouldSample(ctx, traceId);
    },
    toString: () => `LinkedOrRatio{${ratio}}`,
  };
  const provider = new sdk.NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    sampler: new sdk.ParentBasedSampler({ root }),
    spanProcessors: [new sdk.BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  provider.register(); // AsyncLocalStorage context manager, W3C trace-context + baggage propagators
  const handle: Tracing = {
    enabled: true,
    endpoint,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      if (current !== handle) return;
      current = undefined;
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
  current = handle;
  return handle;
}

// ---- Kafka headers ---------------------------------------------------------------------------

/** kafkajs' IHeaders, without depending on kafkajs. */
export type MessageHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

function headerValue(headers: MessageHeaders | undefined, key: string): string | undefined {
  const value = headers?.[key];
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

const headerGetter: TextMapGetter<MessageHeaders | undefined> = {
  keys: (carrier) => Object.keys(carrier ?? {}),
  get: headerValue,
};

const headerSetter: TextMapSetter<MessageHeaders> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** Writes `ctx`'s trace context (the active one by default) into the headers; returns them. */
export function injectTraceHeaders(
  headers: MessageHeaders = {},
  ctx: Context = context.active(),
): MessageHeaders {
  propagation.inject(ctx, headers, headerSetter);
  return headers;
}

/** The context a record's headers carry, to parent or link a consumer's span. */
export function extractTraceContext(
  headers: MessageHeaders | undefined,
  base: Context = ROOT_CONTEXT,
): Context {
  return propagation.extract(base, headers, headerGetter);
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The span context of a W3C `traceparent` header, parsed directly: for code that must read it
 * whether or not this process traces (a drift alert names the trace of its window either way).
 */
export function spanContextFromHeaders(headers: MessageHeaders | undefined): SpanContext | undefined {
  const raw = headerValue(headers, "traceparent");
  if (raw === undefined) return undefined;
  const match = TRACEPARENT.exec(raw.trim());
  if (!match || match[1] === "ff") return undefined;
  const [, , traceId, spanId, flags] = match;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: Number.parseInt(flags!, 16), isRemote: true };
}

/** `traceparent` headers for a span context (the inverse of spanContextFromHeaders). */
export function traceHeadersOf(span: SpanContext): MessageHeaders {
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, "0");
  return { traceparent: `00-${span.traceId}-${span.spanId}-${flags}` };
}
