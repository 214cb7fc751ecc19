/**
 * The servers under test, each in its own process so the load generator does not share their event
 * loop. `tessera`: the feature server over Redis (HTTP + gRPC). `floor`: the least a Node feature
 * server can do — a bare Fastify route and a bare grpc-js handler that read one precomputed, packed
 * vector of 10 float64 per entity (`GET`, `MGET` for many) and return it. Reports its ports over IPC,
 * and its CPU time on request.
 */
import * as grpc from "@grpc/grpc-js";
import {
  featureServerConfig,
  hashKey,
  loadServiceDefinition,
  startFeatureServer,
} from "@tessera/feature-server";
import { setupTracing } from "@tessera/runtime";
import { parseDefinitionsYaml } from "@tessera/transforms";
import Fastify from "fastify";
import { Redis } from "ioredis";
import { pino } from "pino";
import { definitionsOf, FLOOR_FEATURES, floorKey, KEY } from "./shared.js";

const [mode, prefix, viewName] = process.argv.slice(2) as [
  "tessera" | "tessera-traced" | "floor",
  string,
  string,
];
const url = process.env["REDIS_URL"]!;
process.on("SIGTERM", () => process.exit(0)); // a clean exit, so --cpu-prof can write its profile
// CPU time used so far, on request: per-request CPU cost holds up better than latency on a busy machine.
process.on("message", () => process.send!({ cpu: process.cpuUsage() }));

if (mode === "tessera" || mode === "tessera-traced") {
  // Traced: OpenTelemetry on, every request sampled, exported to the bench's discarding receiver.
  if (mode === "tessera-traced")
    await setupTracing(
      { enabled: true, endpoint: process.env["BENCH_OTLP"]!, sampleRatio: 1 },
      { serviceName: "bench-feature-server" },
    );
  const definitions = parseDefinitionsYaml(definitionsOf(viewName));
  const server = await startFeatureServer(
    featureServerConfig({
      http: { port: 0 },
      grpc: { port: 0 },
      store: { kind: "redis", keyPrefix: prefix },
      limits: { ratePerSecond: 1_000_000, burst: 1_000_000 },
      // Measure latency, not shedding: the default event-loop bound and store timeout would turn a
      // saturated run's tail into 503s.
      reliability: { maxEventLoopDelayMs: 0, storeTimeoutMs: 2000 },
    }),
    {
      definitions,
      apiKeys: [{ id: "bench", sha256: hashKey(KEY), views: ["*"] }],
      // Audit lines are on, as in production; written to a null sink.
      logger: pino({ level: "warn" }),
      auditLog: pino({ level: "info" }, pino.destination({ dest: "/dev/null", sync: false })),
    },
  );
  process.send!({ http: server.url, grpc: server.grpcPort });
} else {
  const redis = new Redis(url);
  const read = async (ids: string[]): Promise<number[][]> => {
    const keys = ids.map((id) => floorKey(prefix, id));
    const replies = ids.length === 1 ? [await redis.getBuffer(keys[0]!)] : await redis.mgetBuffer(keys);
    return replies.map((b) => {
      const out: number[] = new Array(FLOOR_FEATURES);
      for (let i = 0; i < FLOOR_FEATURES; i++) out[i] = b ? b.readDoubleLE(i * 8) : 0;
      return out;
    });
  };
  const app = Fastify({ logger: false });
  app.post(
    "/floor",
    {
      schema: {
        body: {
          type: "object",
          properties: { ids: { type: "array", items: { type: "string" } } },
          required: ["ids"],
        },
        response: {
          200: {
            type: "object",
            properties: { values: { type: "array", items: { type: "array", items: { type: "number" } } } },
          },
        },
      },
    },
    async (request) => ({ values: await read((request.body as { ids: string[] }).ids) }),
  );
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  const grpcServer = new grpc.Server();
  // The same service and messages as the feature server's: the floor pays the same protobuf cost.
  grpcServer.addService(loadServiceDefinition(), {
    GetOnlineFeatures: (
      call: grpc.ServerUnaryCall<{ entities: Record<string, { ids: string[] }> }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const ids = Object.values(call.request.entities)[0]?.ids ?? [];
      read(ids).then(
        (vectors) =>
          callback(null, {
            results: vectors.map((v, e) => ({
              entity_key: "card_id",
              entity_id: ids[e],
              features: Object.fromEntries(
                v.map((x, i) => [`f${i}`, { value: { number: x }, status: "PRESENT" }]),
              ),
            })),
            as_of_ms: Date.now(),
          }),
        (error: Error) => callback({ code: grpc.status.UNAVAILABLE, details: error.message }),
      );
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) =>
      e ? reject(e) : resolve(port),
    ),
  );
  process.send!({ http: address, grpc: grpcPort });
}
