/**
 * An in-process OTLP/HTTP trace receiver for tests: accepts POST /v1/traces in protobuf (what
 * @tessera/runtime's exporter sends) or JSON, decodes the spans with the OTLP field numbers
 * (opentelemetry-proto trace/v1), and lets a test wait for the spans it expects.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import protobuf from "protobufjs";

// The subset of opentelemetry/proto/{common,resource,trace}/v1 and collector/trace/v1 a test reads.
const OTLP = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; fixed32 flags = 6; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
  int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; repeated Event events = 11; repeated Link links = 13;
  Status status = 15; fixed32 flags = 16;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const root = protobuf.parse(OTLP, { keepCase: true }).root;
const ExportRequest = root.lookupType("otlp.ExportTraceServiceRequest");

export type AttributeValue = string | number | boolean | AttributeValue[] | null;

export interface ReceivedSpan {
  service: string;
  scope: string;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  attributes: Record<string, AttributeValue>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, AttributeValue> }>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  startMs: number;
  endMs: number;
}

export interface OtlpReceiver {
  /** The traces endpoint, e.g. http://127.0.0.1:43211/v1/traces. */
  url: string;
  spans: ReceivedSpan[];
  /** Export requests received, by content type. */
  requests: Record<string, number>;
  /** Resolves with the spans once `predicate` holds for the spans received so far. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

const hex = (bytes: unknown): string => {
  if (typeof bytes === "string") return bytes.toLowerCase(); // OTLP/JSON carries ids as hex
  return bytes ? Buffer.from(bytes as Uint8Array).toString("hex") : "";
};

function anyValue(value: Record<string, unknown> | undefined): AttributeValue {
  if (!value) return null;
  if ("string_value" in value || "stringValue" in value)
    return String(value["string_value"] ?? value["stringValue"]);
  if ("bool_value" in value || "boolValue" in value)
    return Boolean(value["bool_value"] ?? value["boolValue"]);
  if ("int_value" in value || "intValue" in value) return Number(value["int_value"] ?? value["intValue"]);
  if ("double_value" in value || "doubleValue" in value)
    return Number(value["double_value"] ?? value["doubleValue"]);
  const array = (value["array_value"] ?? value["arrayValue"]) as
    | { values?: Record<string, unknown>[] }
    | undefined;
  if (array) return (array.values ?? []).map(anyValue);
  return null;
}

function attributes(list: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of (list as Array<{ key: string; value?: Record<string, unknown> }>) ?? []) {
    out[kv.key] = anyValue(kv.value);
  }
  return out;
}

const nanosToMs = (value: unknown) => Number(BigInt(String(value ?? 0)) / 1_000_000n);

/** Both encodings normalised to the protobuf field names (OTLP/JSON uses lowerCamelCase). */
function spansOf(request: Record<string, unknown>): ReceivedSpan[] {
  const pick = (o: Record<string, unknown>, snake: string, camel: string) => o[snake] ?? o[camel];
  const out: ReceivedSpan[] = [];
  for (const rs of (pick(request, "resource_spans", "resourceSpans") as Record<string, unknown>[]) ?? []) {
    const resource = attributes((rs["resource"] as Record<string, unknown> | undefined)?.["attributes"]);
    for (const ss of (pick(rs, "scope_spans", "scopeSpans") as Record<string, unknown>[]) ?? []) {
      const scope = String((ss["scope"] as Record<string, unknown> | undefined)?.["name"] ?? "");
      for (const s of (ss["spans"] as Record<string, unknown>[]) ?? []) {
        const status = (s["status"] ?? {}) as Record<string, unknown>;
        out.push({
          service: String(resource["service.name"] ?? ""),
          scope,
          name: String(s["name"]),
          kind: Number(s["kind"] ?? 0),
          traceId: hex(pick(s, "trace_id", "traceId")),
          spanId: hex(pick(s, "span_id", "spanId")),
          parentSpanId: hex(pick(s, "parent_span_id", "parentSpanId")),
          attributes: attributes(s["attributes"]),
          links: ((s["links"] as Record<string, unknown>[]) ?? []).map((l) => ({
            traceId: hex(pick(l, "trace_id", "traceId")),
            spanId: hex(pick(l, "span_id", "spanId")),
            attributes: attributes(l["attributes"]),
          })),
          statusCode: Number(status["code"] ?? 0),
          statusMessage: String(status["message"] ?? ""),
          startMs: nanosToMs(pick(s, "start_time_unix_nano", "startTimeUnixNano")),
          endMs: nanosToMs(pick(s, "end_time_unix_nano", "endTimeUnixNano")),
        });
      }
    }
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: Record<string, number> = {};
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const type = String(req.headers["content-type"] ?? "").split(";")[0]!;
      requests[type] = (requests[type] ?? 0) + 1;
      const body = Buffer.concat(chunks);
      try {
        const decoded =
          type === "application/json"
            ? (JSON.parse(body.toString("utf8")) as Record<string, unknown>)
            : (ExportRequest.toObject(ExportRequest.decode(body), { longs: String, bytes: Buffer }) as Record<
                string,
                unknown
              >);
        spans.push(...spansOf(decoded));
      } catch (error) {
        res.writeHead(400, { "content-type": "text/plain" }).end(String(error));
        return;
      }
      // An empty ExportTraceServiceResponse: full success.
      res.writeHead(200, {
        "content-type": type === "application/json" ? "application/json" : "application/x-protobuf",
      });
      res.end(type === "application/json" ? "{}" : Buffer.alloc(0));
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    requests,
    waitFor(predicate, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(spans)) return;
          cleanup();
          resolve(spans);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `OTLP receiver: expected spans not received within ${timeoutMs} ms; got ${spans.length}: ${spans
                .map((s) => `${s.scope}/${s.name}`)
                .join(", ")}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
