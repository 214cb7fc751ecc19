/**
 * gRPC: tessera.v1.FeatureService/GetOnlineFeatures (schemas/proto/feature_service.proto) over
 * @grpc/grpc-js, with the HTTP route's semantics; ServeError kinds map to gRPC status codes.
 */
import * as grpc from "@grpc/grpc-js";
import { featureServiceConstructor, PROTO_PATH, type ProtoValue } from "@tessera/client";
import type { Logger } from "@tessera/runtime";
import type { Authenticator } from "./auth.js";
import { ServeError, type ServeErrorKind } from "./errors.js";
import type { FeatureLogger } from "./feature-log.js";
import { MalformedRequest, strictRequestDecoder } from "./grpc-decode.js";
import { entityResultsBytes } from "./grpc-encode.js";
import type { ServerMetrics } from "./metrics.js";
import type { FeatureRequest, FeatureResponse, FeatureService } from "./serve.js";
import { traceUnary } from "./tracing.js";
import { checkRequest, type RequestLimits } from "./validate.js";

const GRPC_CODE: Record<ServeErrorKind, grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  forbidden: grpc.status.PERMISSION_DENIED,
  limited: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
};

interface ProtoRequest {
  features?: string[];
  entities?: Record<string, { ids?: string[] }>;
  at_ms?: number;
  context?: Record<string, ProtoValue>;
}

function fromProto(value: ProtoValue | undefined): unknown {
  switch (value?.kind) {
    case "number":
      return value.number;
    case "text":
      return value.text;
    case "flag":
      return value.flag;
    case "list":
      return (value.list?.items ?? []).map(fromProto);
    default:
      return null;
  }
}

/** The service as the proto defines it, loaded once by the client library (the same options). */
export function loadServiceDefinition(): grpc.ServiceDefinition {
  return featureServiceConstructor().service;
}

export interface GrpcOptions {
  service: FeatureService;
  auth: Authenticator;
  metrics: ServerMetrics;
  featureLog: FeatureLogger | undefined;
  auditLog: Logger;
  /** Load shedding shares the HTTP server's pressure measurement. */
  underPressure: () => boolean;
  retryAfterSeconds: number;
  /** The same request limits as HTTP, and the largest message (as HTTP's largest body). */
  limits: RequestLimits & { maxRequestBytes: number };
  maxInFlight: number;
}

/** "127.0.0.1:5123" / "::1:5123" (grpc-js's peer) → the address without the port. */
const peerAddress = (peer: string) => peer.slice(0, Math.max(0, peer.lastIndexOf(":"))) || peer;

/** Where the response's results wait for the serialiser, which writes them by hand (grpc-encode.ts). */
const RESULTS = Symbol("results");
type ProtoResponse = Record<string, unknown> & { [RESULTS]?: FeatureResponse };

/** Protobufjs encodes the rest, and the results bytes go in front (their field may come first). */
export function serializeResponse(encodeRest: (value: unknown) => Buffer) {
  return (value: ProtoResponse): Buffer => {
    const response = value[RESULTS];
    const rest = encodeRest(value);
    return response === undefined ? rest : Buffer.concat([entityResultsBytes(response), rest]);
  };
}

/** The response as protobufjs objects, but for `results`, carried along for serializeResponse. */
export function responseToProto(response: FeatureResponse): ProtoResponse {
  const names = Object.values(response.entities).flatMap((group) => group.features);
  const viewTimes: Record<string, number> = {};
  const viewStatus: Record<string, unknown> = {};
  for (const [view, info] of Object.entries(response.views)) {
    if (info.newestEventTime !== null) viewTimes[view] = info.newestEventTime;
    if (info.degraded || info.gates) {
      viewStatus[view] = {
        degraded: info.degraded,
        reasons: info.reasons.map((r) => ({
          code: r.code,
          message: r.message,
          age_ms: r.ageMs ?? 0,
          max_age_ms: r.maxAgeMs ?? 0,
          subject: r.subject ?? "",
        })),
        gates: (info.gates ?? []).map((g) => ({
          subject: g.subject,
          state: g.state,
          causes: g.causes,
          since_ms: g.since,
          override_until_ms: g.overrideUntil ?? 0,
          on_trip: g.onTrip,
          incident: g.incident ?? "",
        })),
      };
    }
  }
  return {
    [RESULTS]: response,
    as_of_ms: response.asOf,
    view_event_time_ms: viewTimes,
    feature_names: names,
    view_status: viewStatus,
  };
}

export function grpcHandlers(options: GrpcOptions): grpc.UntypedServiceImplementation {
  const { service, auth, metrics, auditLog } = options;
  const first = (metadata: grpc.Metadata, key: string) => {
    const value = metadata.get(key)[0];
    return value === undefined ? undefined : String(value);
  };

  let inFlight = 0;
  const GetOnlineFeatures: grpc.handleUnaryCall<ProtoRequest, unknown> = (call, callback) => {
    const started = performance.now();
    inFlight++;
    let key: string | null = null;
    let views: string[] = [];
    let entities = 0;
    const finish = (code: grpc.status, error?: ServeError | Error, body?: unknown) => {
      inFlight--;
      const seconds = (performance.now() - started) / 1000;
      metrics.requestDuration.observe(
        { protocol: "grpc", route: "GetOnlineFeatures", code: grpc.status[code] },
        seconds,
      );
      auditLog.info({
        audit: true,
        protocol: "grpc",
        key,
        views,
        entities,
        status: grpc.status[code],
        ms: Math.round(seconds * 100_000) / 100,
      });
      if (code === grpc.status.OK) return callback(null, body);
      const trailer = new grpc.Metadata();
      if (error instanceof ServeError) {
        if (error.field) trailer.set("field", error.field);
        if (error.retryAfterSeconds !== undefined)
          trailer.set("retry-after", String(error.retryAfterSeconds));
        if (error.reason) {
          trailer.set("reason", error.reason.code);
          trailer.set("view", error.reason.view);
        }
      }
      callback({ code, details: error?.message ?? grpc.status[code], metadata: trailer });
    };
    const fail = (error: unknown) => {
      if (error instanceof ServeError) {
        if (error.kind === "unauthenticated" || error.kind === "forbidden") {
          metrics.denied.inc({
            protocol: "grpc",
            reason: error.kind === "forbidden" ? "forbidden" : "unauthenticated",
          });
        }
        if (error.kind === "limited") metrics.limited.inc({ protocol: "grpc" });
        return finish(GRPC_CODE[error.kind], error);
      }
      auditLog.error({ err: error }, "gRPC request failed");
      finish(grpc.status.INTERNAL, new Error("internal error"));
    };

    try {
      if (options.underPressure() || inFlight > options.maxInFlight) {
        metrics.shed.inc({ protocol: "grpc" });
        throw new ServeError(
          "unavailable",
          "server under pressure; retry later",
          undefined,
          options.retryAfterSeconds,
        );
      }
      const principal = auth.admit({
        apiKey: first(call.metadata, "x-api-key"),
        authorization: first(call.metadata, "authorization"),
        address: peerAddress(call.getPeer()),
      });
      key = principal.id;
      const request = call.request as ProtoRequest | MalformedRequest;
      if (request instanceof MalformedRequest) {
        throw new ServeError("invalid", `not a GetOnlineFeaturesRequest: ${request.reason}`, "request");
      }
      const features = request.features ?? [];
      const ids: Record<string, string[]> = {};
      for (const [name, list] of Object.entries(request.entities ?? {})) ids[name] = list.ids ?? [];
      const body: FeatureRequest = { features, entities: ids };
      if (request.at_ms !== undefined && request.at_ms !== null) body.at = Number(request.at_ms);
      if (request.context) {
        body.context = Object.fromEntries(Object.entries(request.context).map(([k, v]) => [k, fromProto(v)]));
      }
      views = service.viewsNamed(features);
      // Every limit before anything is resolved, so a huge request costs nothing more.
      entities = checkRequest(body, options.limits);
      // A caller that gave up (deadline, cancel) gets nothing: do not spend a store read on it.
      if (call.cancelled) throw new ServeError("unavailable", "call cancelled before it was served");
      service.get(body, principal).then((response) => {
        metrics.entities.inc({ protocol: "grpc" }, entities);
        options.featureLog?.offer(response);
        finish(grpc.status.OK, undefined, responseToProto(response));
      }, fail);
    } catch (error) {
      fail(error);
    }
  };
  return { GetOnlineFeatures: traceUnary("GetOnlineFeatures", GetOnlineFeatures) }; // tracing
}

export interface GrpcServer {
  port: number;
  /** Stops accepting calls, lets in-flight ones finish within `timeoutMs`, then cuts the rest. */
  stop(timeoutMs: number): Promise<void>;
}

export async function startGrpc(
  options: GrpcOptions & { host: string; port: number; tls?: { cert: Buffer; key: Buffer } },
): Promise<GrpcServer> {
  const server = new grpc.Server({ "grpc.max_receive_message_length": options.limits.maxRequestBytes });
  const { GetOnlineFeatures: method, ...rest } = loadServiceDefinition();
  const definition: grpc.ServiceDefinition = {
    ...rest,
    GetOnlineFeatures: {
      ...method!,
      requestDeserialize: strictRequestDecoder(PROTO_PATH, "tessera.v1.GetOnlineFeaturesRequest"),
      responseSerialize: serializeResponse(method!.responseSerialize),
    },
  };
  server.addService(definition, grpcHandlers(options));
  const credentials = options.tls
    ? grpc.ServerCredentials.createSsl(
        null,
        [{ cert_chain: options.tls.cert, private_key: options.tls.key }],
        false,
      )
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return {
    port,
    stop: (timeoutMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
