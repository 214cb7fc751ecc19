/**
 * gRPC transport: tessera.v1.FeatureService/GetOnlineFeatures (schemas/proto/feature_service.proto)
 * over @grpc/grpc-js, one HTTP/2 channel with keepalive pings. The response is turned into the HTTP
 * response's shape, so both transports give the same results.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  type ErrorCode,
  type FeatureValue,
  TesseraClientError,
  type Transport,
  type ViewStatus,
  type WireRequest,
  type WireResponse,
} from "./types.js";

/** The proto, at the same relative path from src/ and dist/. */
export const PROTO_PATH = fileURLToPath(
  new URL("../../../schemas/proto/feature_service.proto", import.meta.url),
);

export interface GrpcTransportOptions {
  /** host:port, e.g. 127.0.0.1:50051. */
  address: string;
  /** TLS with this CA (PEM); default plaintext. */
  ca?: string | Buffer;
  tls?: boolean;
}

/** tessera.v1.Value as protobuf.js hands it over (oneof `kind` names the field set). */
export interface ProtoValue {
  number?: number;
  text?: string;
  flag?: boolean;
  list?: { items?: ProtoValue[] };
  kind?: string;
}

interface ProtoResponse {
  results?: Array<{
    entity_key: string;
    entity_id: string;
    features?: Record<string, { value?: ProtoValue; status?: string | number }>;
  }>;
  as_of_ms?: number;
  view_event_time_ms?: Record<string, number>;
  view_status?: Record<
    string,
    {
      degraded?: boolean;
      reasons?: Array<{
        code?: string;
        message?: string;
        age_ms?: number;
        max_age_ms?: number;
        subject?: string;
      }>;
      gates?: Array<{
        subject?: string;
        state?: string;
        causes?: string[];
        since_ms?: number;
        override_until_ms?: number;
        on_trip?: string;
        incident?: string;
      }>;
    }
  >;
  feature_names?: string[];
}

type UnaryClient = grpc.Client & {
  GetOnlineFeatures(
    request: unknown,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: ProtoResponse) => void,
  ): grpc.ClientUnaryCall;
};

const CODE: Partial<Record<grpc.status, ErrorCode>> = {
  [grpc.status.INVALID_ARGUMENT]: "invalid",
  [grpc.status.UNAUTHENTICATED]: "unauthenticated",
  [grpc.status.PERMISSION_DENIED]: "forbidden",
  [grpc.status.RESOURCE_EXHAUSTED]: "limited",
  [grpc.status.UNAVAILABLE]: "unavailable",
  [grpc.status.DEADLINE_EXCEEDED]: "deadline",
  [grpc.status.CANCELLED]: "cancelled",
};

/** A JSON feature or context value as the proto's Value (protobufjs object form); null sets no kind. */
export function toProto(value: unknown): ProtoValue {
  if (typeof value === "number") return { number: value };
  if (typeof value === "string") return { text: value };
  if (typeof value === "boolean") return { flag: value };
  if (Array.isArray(value)) return { list: { items: value.map(toProto) } };
  return {};
}

function fromProto(value: ProtoValue | undefined): FeatureValue {
  switch (value?.kind) {
    case "number":
      return value.number ?? null;
    case "text":
      return value.text ?? null;
    case "flag":
      return value.flag ?? null;
    case "list":
      return (value.list?.items ?? []).map(fromProto);
    default:
      return null;
  }
}

/** PRESENT → present; a status this client does not know yet passes through, lower-cased. */
function statusOf(status: string | number | undefined): string {
  if (typeof status === "string") return status.toLowerCase();
  return status === undefined ? "unknown" : `status_${status}`;
}

let serviceClient: grpc.ServiceClientConstructor | undefined;
/** tessera.v1.FeatureService loaded from the proto (once); its `service` is what a server implements. */
export function featureServiceConstructor(): grpc.ServiceClientConstructor {
  if (!serviceClient) {
    const definition = protoLoader.loadSync(PROTO_PATH, {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: false,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      tessera: { v1: { FeatureService: grpc.ServiceClientConstructor } };
    };
    serviceClient = pkg.tessera.v1.FeatureService;
  }
  return serviceClient;
}

/** The gRPC answer in the HTTP response's shape: per entity key, columns in resolved order. */
export function wireResponse(response: ProtoResponse): WireResponse {
  const names = response.feature_names ?? [];
  const entities: WireResponse["entities"] = {};
  for (const result of response.results ?? []) {
    let group = entities[result.entity_key];
    if (!group) {
      const own = new Set(Object.keys(result.features ?? {}));
      group = { features: names.filter((n) => own.has(n)), results: [] };
      entities[result.entity_key] = group;
    }
    const features = result.features ?? {};
    group.results.push({
      id: result.entity_id,
      values: group.features.map((n) => fromProto(features[n]?.value)),
      statuses: group.features.map((n) => statusOf(features[n]?.status)),
    });
  }
  const views: Record<string, ViewStatus> = {};
  for (const name of names) {
    const view = name.slice(0, name.indexOf(":"));
    const status = response.view_status?.[view];
    views[view] ??= {
      newestEventTime: response.view_event_time_ms?.[view] ?? null,
      degraded: status?.degraded ?? false,
      reasons: (status?.reasons ?? []).map((r) => ({
        code: r.code,
        message: r.message,
        ageMs: Number(r.age_ms ?? 0),
        maxAgeMs: Number(r.max_age_ms ?? 0),
        ...(r.subject ? { subject: r.subject } : {}),
      })),
    };
    if (status?.gates?.length) {
      views[view]!.gates = status.gates.map((g) => ({
        subject: g.subject ?? "",
        state: g.state ?? "",
        causes: g.causes ?? [],
        since: Number(g.since_ms ?? 0),
        ...(g.override_until_ms ? { overrideUntil: Number(g.override_until_ms) } : {}),
        onTrip: g.on_trip ?? "",
        ...(g.incident ? { incident: g.incident } : {}),
      }));
    }
  }
  return { asOf: Number(response.as_of_ms ?? 0), views, entities };
}

export class GrpcTransport implements Transport {
  private readonly client: UnaryClient;

  constructor(options: GrpcTransportOptions) {
    const Client = featureServiceConstructor();
    const credentials =
      options.tls || options.ca
        ? grpc.credentials.createSsl(options.ca ? Buffer.from(options.ca) : null)
        : grpc.credentials.createInsecure();
    this.client = new Client(options.address, credentials, {
      // A restarted server is found again within seconds, not grpc-js' default of up to two minutes.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 5000,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
    }) as unknown as UnaryClient;
  }

  call(
    request: WireRequest,
    options: { signal: AbortSignal; deadline: number; headers: Record<string, string> },
  ): Promise<WireResponse> {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(options.headers)) metadata.set(key, value);
    const message: Record<string, unknown> = {
      features: request.features,
      entities: Object.fromEntries(Object.entries(request.entities).map(([k, ids]) => [k, { ids }])),
    };
    if (request.at !== undefined) message["at_ms"] = request.at;
    if (request.context) {
      message["context"] = Object.fromEntries(
        Object.entries(request.context).map(([k, v]) => [k, toProto(v)]),
      );
    }
    return new Promise((resolve, reject) => {
      if (options.signal.aborted) return reject(aborted(options.signal));
      const call = this.client.GetOnlineFeatures(
        message,
        metadata,
        { deadline: new Date(options.deadline) },
        (error, response) => {
          options.signal.removeEventListener("abort", cancel);
          if (error) return reject(options.signal.aborted ? aborted(options.signal) : grpcError(error));
          resolve(wireResponse(response ?? {}));
        },
      );
      const cancel = () => call.cancel();
      options.signal.addEventListener("abort", cancel, { once: true });
    });
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function aborted(signal: AbortSignal): TesseraClientError {
  const reason = signal.reason as Error | undefined;
  return reason instanceof TesseraClientError
    ? reason
    : new TesseraClientError("cancelled", `call cancelled: ${reason?.message ?? "aborted"}`);
}

function grpcError(error: grpc.ServiceError): TesseraClientError {
  const first = (key: string) => {
    const value = error.metadata?.get(key)[0];
    return value === undefined ? undefined : String(value);
  };
  const retryAfter = first("retry-after");
  const reason = first("reason");
  return new TesseraClientError(
    CODE[error.code as grpc.status] ?? "internal",
    `gRPC ${grpc.status[error.code] ?? error.code}: ${error.details}`,
    {
      grpcCode: error.code,
      field: first("field"),
      retryAfterMs:
        retryAfter !== undefined && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined,
      reason,
      view: first("view"),
      retriable: error.code === grpc.status.UNAVAILABLE && reason === undefined,
      cause: error,
    },
  );
}
