/**
 * Spans of the feature server: one SERVER span per HTTP or gRPC request (continuing the caller's
 * W3C trace context), a child per store read and one for finalising. Each helper decides at start
 * whether tracing is on (`tracingEnabled()`, see @tessera/runtime/tracing): when it is off the
 * hooks are not installed and the store is not wrapped, so a request pays nothing for tracing.
 */
import type * as grpc from "@grpc/grpc-js";
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { tracingEnabled } from "@tessera/runtime/tracing";
import type { OnlineStore } from "@tessera/stores";
import type { FastifyInstance, FastifyRequest } from "fastify";

const tracer = trace.getTracer("tessera.feature-server");
const SPAN = Symbol("tessera.span");
type Traced = FastifyRequest & { [SPAN]?: Span };

/** Adds request spans to the routes of `scope` (call it before the routes' own hooks). */
export function traceHttp(scope: FastifyInstance): void {
  if (!tracingEnabled()) return;
  scope.addHook("onRequest", (request, _reply, done) => {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const route = request.routeOptions.url ?? request.url;
    const span = tracer.startSpan(
      `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: { "http.request.method": request.method, "http.route": route, "url.path": request.url },
      },
      parent,
    );
    (request as Traced)[SPAN] = span;
    // The rest of the request (auth, handler, store reads) runs in the span's context.
    context.with(trace.setSpan(parent, span), done);
  });
  scope.addHook("onError", async (request, _reply, error) => {
    (request as Traced)[SPAN]?.recordException(error);
  });
  scope.addHook("onResponse", async (request, reply) => {
    const span = (request as Traced)[SPAN];
    if (!span) return;
    span.setAttribute("http.response.status_code", reply.statusCode);
    if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    if (request.audit) {
      span.setAttribute("tessera.views", request.audit.views);
      span.setAttribute("tessera.entities", request.audit.entities);
    }
    span.end();
  });
  scope.addHook("onRequestAbort", async (request) => {
    const span = (request as Traced)[SPAN];
    span?.setStatus({ code: SpanStatusCode.ERROR, message: "client aborted" });
    span?.end();
  });
}

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).map(String);
    return values.length > 1 ? values : values[0];
  },
};

/** The unary handler with a SERVER span around it (the handler itself unchanged when tracing is off). */
export function traceUnary<Req, Res>(
  method: string,
  handler: grpc.handleUnaryCall<Req, Res>,
): grpc.handleUnaryCall<Req, Res> {
  if (!tracingEnabled()) return handler;
  return (call, callback) => {
    const parent = propagation.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
    const span = tracer.startSpan(
      `tessera.v1.FeatureService/${method}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": "grpc",
          "rpc.service": "tessera.v1.FeatureService",
          "rpc.method": method,
        },
      },
      parent,
    );
    const done: grpc.sendUnaryData<Res> = (error, value, trailer, flags) => {
      span.setAttribute("rpc.grpc.status_code", error?.code ?? 0);
      if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.details ?? "" });
      span.end();
      callback(error, value, trailer, flags);
    };
    context.with(trace.setSpan(parent, span), () => handler(call, done));
  };
}

/** The store with a span around each read (`readStates`, …), as a child of the request's span. */
export function traceStore(store: OnlineStore): OnlineStore {
  if (!tracingEnabled()) return store;
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      let fn = bound.get(property);
      if (!fn) {
        const method = value as (...args: unknown[]) => Promise<unknown>;
        fn =
          typeof property === "string" && property.startsWith("read")
            ? (...args: unknown[]) => {
                if (!trace.getActiveSpan()) return method.apply(target, args);
                const attributes: Record<string, string | number> = {};
                if (typeof args[0] === "string") attributes["tessera.view"] = args[0];
                const ids = args.find(Array.isArray);
                if (ids) attributes["tessera.entities"] = ids.length;
                return tracer.startActiveSpan(
                  `store ${property}`,
                  { kind: SpanKind.CLIENT, attributes },
                  (span) =>
                    method.apply(target, args).then(
                      (result) => {
                        span.end();
                        return result;
                      },
                      (error: unknown) => {
                        span.recordException(error as Error);
                        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
                        span.end();
                        throw error;
                      },
                    ),
                );
              }
            : method.bind(target);
        bound.set(property, fn);
      }
      return fn;
    },
  });
}

const NOTHING = () => {};

/** A child span of the active request for a synchronous phase (finalise); returns its end. */
export function tracePhase(name: string): () => void {
  const parent = trace.getActiveSpan();
  if (!parent) return NOTHING; // tracing off, or no request span: no span object at all
  const span = tracer.startSpan(name);
  return () => span.end();
}
