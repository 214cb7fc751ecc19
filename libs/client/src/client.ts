/**
 * `createClient`: feature vectors for inference services. One call = one deadline; within it,
 * attempts are retried with jittered exponential backoff, but only when the server says it is
 * worth it (HTTP 503, gRPC UNAVAILABLE, or a connection that failed or dropped) — never a 4xx.
 * Optionally a hedged attempt starts when the first is slow, and the first answer wins.
 */
import {
  context,
  ProxyTracerProvider,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { GrpcTransport } from "./grpc.js";
import { HttpTransport } from "./http.js";
import {
  type EntityIds,
  type FeatureRef,
  type FeatureSchema,
  type FeatureValue,
  type GetFeaturesRequest,
  type GetFeaturesResult,
  TesseraClientError,
  type Transport,
  type UntypedSchema,
  type WireRequest,
  type WireResponse,
} from "./types.js";

export interface RetryOptions {
  /** Attempts in all, the first included (default 3). */
  maxAttempts?: number;
  /** Backoff before the first retry; doubles each time, full jitter (default 25 ms). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Wait at least the server's Retry-After (default true). A retry that would end past the deadline is not made. */
  respectRetryAfter?: boolean;
}

export interface HedgeOptions {
  /** Start another attempt when none has answered after this long. */
  delayMs: number;
  /** Attempts in flight at most, the first included (default 2). */
  maxAttempts?: number;
}

export interface ClientOptions {
  /** HTTP base URL of the feature server, e.g. http://127.0.0.1:8080. Either this or `grpc`. */
  url?: string;
  /** gRPC address host:port, e.g. 127.0.0.1:50051. */
  grpc?: string;
  /** Sent as x-api-key. */
  apiKey?: string;
  /** A JWT, sent as `authorization: Bearer …`. */
  token?: string;
  /** Extra headers (HTTP) or metadata (gRPC) on every call. */
  headers?: Record<string, string>;
  /** Bound on one getFeatures call, retries and hedges included (default 1000 ms). */
  deadlineMs?: number;
  /** `false` disables retries. */
  retry?: RetryOptions | false;
  hedge?: HedgeOptions;
  /** HTTP: connections kept per server (default 16); idle keep-alive (default 30 s). */
  connections?: number;
  keepAliveMs?: number;
  /** CA certificate (PEM) for TLS with a private CA (https:// URL, or gRPC with TLS). */
  ca?: string | Buffer;
  /** gRPC over TLS with the system's CAs. */
  tls?: boolean;
  /** Another transport (tests, a custom one). */
  transport?: Transport;
  /** Source of randomness for the jitter (tests). */
  random?: () => number;
}

export interface TesseraClient<S extends FeatureSchema = UntypedSchema> {
  getFeatures<const R extends FeatureRef<S>, const E extends EntityIds<S, R>>(
    request: GetFeaturesRequest<S, R, E>,
  ): Promise<GetFeaturesResult<S, R, E>>;
  close(): Promise<void>;
}

const tracer = trace.getTracer("tessera.client");
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
/** A span only when the application registered a tracer provider (no span objects otherwise). */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

export function createClient<S extends FeatureSchema = UntypedSchema>(
  options: ClientOptions,
): TesseraClient<S> {
  return new Client<S>(options);
}

class Client<S extends FeatureSchema> implements TesseraClient<S> {
  private readonly transport: Transport;
  private readonly headers: Record<string, string>;
  private readonly deadlineMs: number;
  private readonly retry: Required<RetryOptions>;
  private readonly hedge?: Required<HedgeOptions>;
  private readonly random: () => number;

  constructor(options: ClientOptions) {
    if (options.transport) this.transport = options.transport;
    else if (options.grpc && options.url) throw new TypeError("give either url (HTTP) or grpc, not both");
    else if (options.grpc)
      this.transport = new GrpcTransport({ address: options.grpc, ca: options.ca, tls: options.tls });
    else if (options.url)
      this.transport = new HttpTransport({
        url: options.url,
        connections: options.connections,
        keepAliveMs: options.keepAliveMs,
        ca: options.ca,
      });
    else throw new TypeError("url (HTTP) or grpc (host:port) is required");
    this.headers = { ...options.headers };
    if (options.apiKey) this.headers["x-api-key"] = options.apiKey;
    if (options.token) this.headers["authorization"] = `Bearer ${options.token}`;
    this.deadlineMs = positive(options.deadlineMs ?? 1000, "deadlineMs");
    const retry = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {});
    this.retry = {
      maxAttempts: Math.max(1, Math.floor(retry.maxAttempts ?? 3)),
      initialBackoffMs: retry.initialBackoffMs ?? 25,
      maxBackoffMs: retry.maxBackoffMs ?? 1000,
      respectRetryAfter: retry.respectRetryAfter ?? true,
    };
    if (options.hedge) {
      this.hedge = {
        delayMs: positive(options.hedge.delayMs, "hedge.delayMs"),
        maxAttempts: Math.max(1, Math.floor(options.hedge.maxAttempts ?? 2)),
      };
    }
    this.random = options.random ?? Math.random;
  }

  async getFeatures<const R extends FeatureRef<S>, const E extends EntityIds<S, R>>(
    request: GetFeaturesRequest<S, R, E>,
  ): Promise<GetFeaturesResult<S, R, E>> {
    const wire = wireRequest(request as unknown as GetFeaturesRequest<UntypedSchema, string>);
    const budget = positive(request.deadlineMs ?? this.deadlineMs, "deadlineMs");
    if (!tracing()) return this.run<R, E>(wire, budget, request.signal, this.headers);
    return tracer.startActiveSpan(
      "tessera getFeatures",
      {
        kind: SpanKind.CLIENT,
        attributes: { "tessera.features": wire.features.length, "tessera.entities": countIds(wire.entities) },
      },
      async (span) => {
        const headers = { ...this.headers };
        propagation.inject(context.active(), headers);
        try {
          const result = await this.run<R, E>(wire, budget, request.signal, headers);
          span.setAttribute("tessera.attempts", result.attempts);
          return result;
        } catch (error) {
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private async run<R extends string, E extends EntityIds<S, R>>(
    wire: WireRequest,
    budgetMs: number,
    signal: AbortSignal | undefined,
    headers: Record<string, string>,
  ): Promise<GetFeaturesResult<S, R, E>> {
    const deadline = Date.now() + budgetMs;
    const call = new AbortController();
    const timer = setTimeout(
      () => call.abort(new TesseraClientError("deadline", `no answer within the ${budgetMs} ms deadline`)),
      budgetMs,
    );
    const forward = () =>
      call.abort(
        new TesseraClientError(
          "cancelled",
          `call cancelled: ${(signal?.reason as Error)?.message ?? "aborted"}`,
          {
            cause: signal?.reason,
          },
        ),
      );
    if (signal?.aborted) forward();
    signal?.addEventListener("abort", forward, { once: true });
    let attempts = 0;
    try {
      for (let round = 0; ; round++) {
        try {
          const { response, started } = await this.attempt(wire, deadline, call.signal, headers);
          attempts += started;
          return result<S, R, E>(response, attempts);
        } catch (error) {
          const failure = asClientError(error);
          attempts += failure.attempts;
          failure.attempts = attempts;
          if (!failure.retriable || call.signal.aborted) throw failure;
          if (round + 1 >= this.retry.maxAttempts) throw failure;
          let delay = this.backoff(round);
          if (this.retry.respectRetryAfter && failure.retryAfterMs !== undefined)
            delay = Math.max(delay, failure.retryAfterMs);
          // A retry that cannot finish before the deadline only delays the error.
          if (Date.now() + delay >= deadline) throw failure;
          await sleep(delay, call.signal);
          if (call.signal.aborted) throw failure;
        }
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", forward);
    }
  }

  /** Full jitter: uniform in [0, min(max, initial · 2^round)]. */
  private backoff(round: number): number {
    const cap = Math.min(this.retry.maxBackoffMs, this.retry.initialBackoffMs * 2 ** round);
    return this.random() * cap;
  }

  /**
   * One try: an attempt, plus hedged ones while none has answered (when configured). The first
   * answer wins and the others are cancelled; an error that retrying cannot fix ends it at once.
   */
  private attempt(
    wire: WireRequest,
    deadline: number,
    signal: AbortSignal,
    headers: Record<string, string>,
  ): Promise<{ response: WireResponse; started: number }> {
    const max = this.hedge?.maxAttempts ?? 1;
    return new Promise((resolve, reject) => {
      const inFlight = new Set<AbortController>();
      let started = 0;
      let failed = 0;
      let settled = false;
      let last: TesseraClientError | undefined;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", cancelAll);
        for (const c of inFlight)
          c.abort(new TesseraClientError("cancelled", "another attempt answered first"));
      };
      const cancelAll = () => {
        for (const c of inFlight) c.abort(signal.reason);
      };
      signal.addEventListener("abort", cancelAll, { once: true });
      const launch = () => {
        if (settled || started >= max) return;
        started++;
        const attempt = new AbortController();
        if (signal.aborted) attempt.abort(signal.reason);
        inFlight.add(attempt);
        this.transport.call(wire, { signal: attempt.signal, deadline, headers }).then(
          (response) => {
            inFlight.delete(attempt);
            if (settled) return;
            finish();
            resolve({ response, started });
          },
          (error: unknown) => {
            inFlight.delete(attempt);
            failed++;
            const failure = asClientError(error);
            // The call's own abort (deadline, caller) is the reason to report, whichever attempt saw it.
            if (last?.code !== "deadline") last = failure;
            if (settled) return;
            if (!failure.retriable || failed === started) {
              finish();
              last.attempts = started;
              reject(last);
            }
          },
        );
        if (started < max && this.hedge) timer = setTimeout(launch, this.hedge.delayMs);
      };
      launch();
    });
  }
}

function positive(value: number, name: string): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new TypeError(`${name}: expected a positive number of ms, got ${value}`);
  return value;
}

function countIds(entities: Record<string, string[]>): number {
  let n = 0;
  for (const ids of Object.values(entities)) n += ids.length;
  return n;
}

function wireRequest(request: GetFeaturesRequest<UntypedSchema, string>): WireRequest {
  const wire: WireRequest = {
    features: [...request.features],
    entities: Object.fromEntries(Object.entries(request.entities).map(([k, ids]) => [k, [...ids]])),
  };
  if (request.at !== undefined) wire.at = request.at instanceof Date ? request.at.getTime() : request.at;
  if (request.context !== undefined) wire.context = request.context;
  return wire;
}

function asClientError(error: unknown): TesseraClientError {
  if (error instanceof TesseraClientError) return error;
  return new TesseraClientError("internal", (error as Error)?.message ?? String(error), { cause: error });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The wire response as per-entity objects keyed by feature name. */
function result<S extends FeatureSchema, R extends string, E extends EntityIds<S, R>>(
  response: WireResponse,
  attempts: number,
): GetFeaturesResult<S, R, E> {
  let degraded = false;
  const entities: Record<string, Array<{ key: string; id: string; features: Record<string, unknown> }>> = {};
  const index = new Map<string, Map<string, Record<string, unknown>>>();
  for (const [key, group] of Object.entries(response.entities ?? {})) {
    const byId = new Map<string, Record<string, unknown>>();
    entities[key] = group.results.map((row) => {
      const features: Record<string, { value: FeatureValue; status: string }> = {};
      group.features.forEach((name, c) => {
        const status = row.statuses[c] ?? "unknown";
        if (status !== "present" && status !== "missing") degraded = true;
        features[name] = { value: (row.values[c] ?? null) as FeatureValue, status };
      });
      if (!byId.has(row.id)) byId.set(row.id, features);
      return { key, id: row.id, features };
    });
    index.set(key, byId);
  }
  for (const view of Object.values(response.views ?? {})) if (view.degraded) degraded = true;
  const out = { asOf: response.asOf, views: response.views ?? {}, entities, degraded, attempts };
  // Not enumerable: the result stays plain data (JSON, deep equality) with a lookup on the side.
  Object.defineProperty(out, "entity", {
    value: (key: string, id: string) => index.get(key)?.get(id),
    enumerable: false,
  });
  return out as unknown as GetFeaturesResult<S, R, E>;
}
