/**
 * The servers under test, each in its own process so the load generator does not share their event
 * loop: `tessera` (the feature server over Redis, HTTP + gRPC) or `bare` (a Fastify route doing the
 * same raw ioredis HGETALL per entity and nothing else). Reports its ports over IPC.
 */
import { featureServerConfig, hashKey, startFeatureServer } from "@tessera/feature-server";
import { parseDefinitionsYaml } from "@tessera/transforms";
import Fastify from "fastify";
import { Redis } from "ioredis";
import { pino } from "pino";
import { DEFINITIONS, KEY, tileKey } from "./shared.js";

const [mode, prefix] = process.argv.slice(2) as ["tessera" | "bare", string];
const url = process.env["REDIS_URL"]!;
process.on("SIGTERM", () => process.exit(0)); // a clean exit, so --cpu-prof can write its profile
// CPU time used so far, on request: per-request CPU cost holds up better than latency on a busy machine.
process.on("message", () => process.send!({ cpu: process.cpuUsage() }));

if (mode === "tessera") {
  const definitions = parseDefinitionsYaml(DEFINITIONS);
  const server = await startFeatureServer(
    featureServerConfig({
      http: { port: 0 },
      grpc: { port: 0 },
      store: { kind: "redis", keyPrefix: prefix },
      limits: { ratePerSecond: 1_000_000, burst: 1_000_000 },
      // Measure latency, not shedding: on a machine this shared, the default 200 ms event-loop bound
      // and 250 ms store timeout would turn the tail into 503s.
      reliability: { maxEventLoopDelayMs: 0, storeTimeoutMs: 2000 },
    }),
    {
      definitions,
      apiKeys: [{ id: "bench", sha256: hashKey(KEY), views: ["*"] }],
      // Audit lines are on, as in production; written to a null sink (stdout is ignored by the parent).
      logger: pino({ level: "warn" }),
      auditLog: pino({ level: "info" }, pino.destination({ dest: "/dev/null", sync: false })),
    },
  );
  process.send!({ http: server.url, grpc: server.grpcPort });
} else {
  const redis = new Redis(url);
  const view = parseDefinitionsYaml(DEFINITIONS).views[0]!;
  const app = Fastify({ logger: false });
  app.post("/bare", async (request) => {
    const ids = (request.body as { ids: string[] }).ids;
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hgetallBuffer(tileKey(prefix, view.name, view.version, id));
    const replies = (await pipeline.exec()) ?? [];
    return { fields: replies.map(([, hash]) => Object.keys(hash as object).length) };
  });
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  process.send!({ http: address });
}
