/**
 * @tessera/client against the real feature server over real Redis: typed results equal the raw
 * HTTP response for 200 entities (over HTTP and gRPC); a 400 is never retried (counted by the
 * server); a server killed and restarted while a call is under way is retried within the deadline.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createClient,
  type GetFeaturesResult,
  TesseraClientError,
  type UntypedSchema,
} from "@tessera/client";
import {
  type FeatureResponse,
  type FeatureServerHandle,
  featureServerConfig,
  hashKey,
  startFeatureServer,
} from "@tessera/feature-server";
import { RedisOnlineStore } from "@tessera/stores";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiKeys,
  DEFINITIONS_YAML,
  definitions,
  events,
  KEYS,
  writeTiles,
} from "../../services/feature-server/test/fixtures.js";
import { services, uniqueName } from "../support/index.js";

const silent = pino({ level: "silent" });
const CARDS = 200;

/** What the typed result must be, built from the raw HTTP response by hand. */
function expectedFrom(raw: FeatureResponse) {
  const entities: Record<string, unknown[]> = {};
  for (const [key, group] of Object.entries(raw.entities)) {
    entities[key] = group.results.map((row) => ({
      key,
      id: row.id,
      features: Object.fromEntries(
        group.features.map((name, c) => [name, { value: row.values[c] ?? null, status: row.statuses[c] }]),
      ),
    }));
  }
  return entities;
}

const statusCount = async (server: FeatureServerHandle, protocol: string, code: string) => {
  const metric = await server.registry
    .getSingleMetric("tessera_feature_server_request_duration_seconds")!
    .get();
  return metric.values
    .filter(
      (v: { metricName?: string; labels: Record<string, unknown> }) =>
        v.metricName?.endsWith("_count") && v.labels["protocol"] === protocol && v.labels["code"] === code,
    )
    .reduce((n, v) => n + v.value, 0);
};

describe("client against the feature server (in process, real Redis)", () => {
  const defs = definitions();
  const now = Date.now();
  const rows = events(now, 3000, CARDS);
  const prefix = `${uniqueName("client")}:`;
  let store: RedisOnlineStore;
  let server: FeatureServerHandle;

  beforeAll(async () => {
    store = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: prefix, timeoutMs: 5000 });
    await writeTiles(store, defs, rows, now);
    server = await startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { port: 0 },
        reliability: { maxEventLoopDelayMs: 0, storeTimeoutMs: 5000 },
      }),
      { store, definitions: defs, apiKeys: apiKeys(), logger: silent },
    );
  });
  afterAll(async () => {
    await server?.stop();
    await store?.close();
  });

  const request = (at: number) => ({
    features: ["card:*", "merchant:n_1h"],
    entities: {
      card_id: Array.from({ length: CARDS }, (_, i) => `card-${i}`),
      merchant_id: ["m-0", "m-1", "m-2", "m-3", "m-4"],
    },
    at,
    context: { amount: 120.5 },
  });

  it("typed results equal the raw HTTP response, for 200 entities, over HTTP and gRPC", async () => {
    const at = Date.now();
    const res = await fetch(`${server.url}/v1/features`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEYS.all },
      body: JSON.stringify(request(at)),
    });
    expect(res.status).toBe(200);
    const raw = (await res.json()) as FeatureResponse;
    const expected = expectedFrom(raw);
    expect((expected["card_id"] as unknown[]).length).toBe(CARDS);
    // The data is real: most cards have events, so values are not all empty.
    const present = raw.entities["card_id"]!.results.filter((r) => r.statuses[0] === "present").length;
    expect(present).toBeGreaterThan(CARDS / 2);

    const http = createClient({ url: server.url, apiKey: KEYS.all, deadlineMs: 10_000 });
    const grpc = createClient({ grpc: `127.0.0.1:${server.grpcPort}`, apiKey: KEYS.all, deadlineMs: 10_000 });
    try {
      const viaHttp = await http.getFeatures(request(at));
      expect(viaHttp.asOf).toBe(raw.asOf);
      expect(viaHttp.views).toEqual(raw.views);
      expect(viaHttp.entities).toEqual(expected);
      expect(viaHttp.attempts).toBe(1);

      const viaGrpc = await grpc.getFeatures(request(at));
      expect(viaGrpc.asOf).toBe(raw.asOf);
      expect(viaGrpc.entities).toEqual(expected);
      for (const [view, info] of Object.entries(raw.views))
        expect(viaGrpc.views[view]!.newestEventTime, view).toBe(info.newestEventTime);

      const seventh = expected["card_id"]![7] as { features: Record<string, unknown> };
      expect(viaHttp.entity("card_id", "card-7")).toEqual(seventh.features);
    } finally {
      await Promise.all([http.close(), grpc.close()]);
    }
  });

  it("a 400 is never retried: the server sees exactly one request (HTTP and gRPC)", async () => {
    const retry = { maxAttempts: 10, initialBackoffMs: 1 };
    const http = createClient({ url: server.url, apiKey: KEYS.all, retry });
    const grpc = createClient({ grpc: `127.0.0.1:${server.grpcPort}`, apiKey: KEYS.all, retry });
    try {
      const before = {
        http: await statusCount(server, "http", "400"),
        grpc: await statusCount(server, "grpc", "INVALID_ARGUMENT"),
      };
      const bad = { features: ["card:n_1h", "card:no_such"], entities: { card_id: ["card-1"] } };
      const viaHttp = (await http.getFeatures(bad).catch((e) => e)) as TesseraClientError;
      expect(viaHttp).toBeInstanceOf(TesseraClientError);
      expect(viaHttp).toMatchObject({
        code: "invalid",
        status: 400,
        field: "features[1]",
        attempts: 1,
        retriable: false,
      });
      const viaGrpc = (await grpc.getFeatures(bad).catch((e) => e)) as TesseraClientError;
      expect(viaGrpc).toMatchObject({ code: "invalid", grpcCode: 3, field: "features[1]", attempts: 1 });
      expect(await statusCount(server, "http", "400")).toBe(before.http + 1);
      expect(await statusCount(server, "grpc", "INVALID_ARGUMENT")).toBe(before.grpc + 1);
    } finally {
      await Promise.all([http.close(), grpc.close()]);
    }
  });
});

/** A port nothing listens on now (the restarted server must come back on the same one). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe("client across a feature-server restart (child process, real Redis)", () => {
  const dir = mkdtempSync(join(tmpdir(), "client-restart-"));
  const prefix = `${uniqueName("client-restart")}:`;
  const defs = definitions();
  const now = Date.now();
  const rows = events(now, 400, 8);
  let httpPort = 0;
  let grpcPort = 0;
  let child: ChildProcess | undefined;

  const start = async (): Promise<ChildProcess> => {
    const proc = spawn(
      process.execPath,
      [
        "--conditions=@tessera/source",
        "--import",
        "tsx",
        join(import.meta.dirname, "../../services/feature-server/src/main.ts"),
        "--config",
        join(dir, "config.yaml"),
      ],
      { env: { ...process.env, ...services() }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let log = "";
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on("data", (chunk) => {
        log += chunk;
        if (log.includes("feature server listening")) resolve();
      });
      proc.stderr!.on("data", (chunk) => {
        log += chunk;
      });
      proc.once("exit", (code) => reject(new Error(`feature server exited ${code}: ${log}`)));
    });
    return proc;
  };
  const kill = async (proc: ChildProcess, signal: NodeJS.Signals) => {
    if (proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await exited;
  };

  beforeAll(async () => {
    const store = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: prefix });
    await writeTiles(store, defs, rows, now);
    await store.close();
    httpPort = await freePort();
    grpcPort = await freePort();
    writeFileSync(join(dir, "features.yaml"), DEFINITIONS_YAML);
    writeFileSync(
      join(dir, "keys.yaml"),
      `keys:\n  - { id: ops, sha256: ${hashKey(KEYS.all)}, views: ["*"] }\n`,
    );
    writeFileSync(
      join(dir, "config.yaml"),
      [
        `definitions: ${join(dir, "features.yaml")}`,
        `http: { port: ${httpPort} }`,
        `grpc: { port: ${grpcPort} }`,
        `store: { kind: redis, keyPrefix: "${prefix}" }`,
        `auth: { keysFile: ${join(dir, "keys.yaml")} }`,
      ].join("\n"),
    );
    child = await start();
  }, 120_000);
  afterAll(async () => {
    if (child) await kill(child, "SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a call under way while the server is killed and restarted succeeds within its deadline", async () => {
    const deadlineMs = 60_000;
    const retry = { maxAttempts: 1000, initialBackoffMs: 50, maxBackoffMs: 500 };
    const http = createClient({ url: `http://127.0.0.1:${httpPort}`, apiKey: KEYS.all, deadlineMs, retry });
    const grpc = createClient({ grpc: `127.0.0.1:${grpcPort}`, apiKey: KEYS.all, deadlineMs, retry });
    // A fixed `at`: the values cannot move while the test runs. It lies a few minutes ahead, not at
    // `now`: the earliest `at` the server accepts is the start of the current hour (1 d windows on
    // 1 h hops), so an `at` taken seconds before an hour turns would be refused after it.
    const request = {
      features: ["card:n_1h", "card:amount_sum_1h"],
      entities: { card_id: ["card-1", "card-2"] },
      at: now + 5 * 60_000,
    };
    try {
      // Warm: both clients hold a live connection to the first process.
      const before = await http.getFeatures(request);
      await grpc.getFeatures(request);

      await kill(child!, "SIGKILL");
      const started = Date.now();
      const settled: string[] = [];
      const calls = [http, grpc].map((c, i) =>
        c.getFeatures(request).then((r) => {
          settled.push(i === 0 ? "http" : "grpc");
          return r;
        }),
      );
      await new Promise((r) => setTimeout(r, 1000));
      expect(settled, "nothing answers while the server is down").toEqual([]);
      child = await start();
      const [viaHttp, viaGrpc] = (await Promise.all(calls)) as Array<
        GetFeaturesResult<UntypedSchema, string>
      >;
      const elapsed = Date.now() - started;
      expect(elapsed).toBeLessThan(deadlineMs);
      expect(viaHttp!.attempts).toBeGreaterThan(1);
      expect(viaGrpc!.attempts).toBeGreaterThan(1);
      // The restarted server serves the same stored state.
      for (const result of [viaHttp!, viaGrpc!]) {
        expect(result.entities.card_id!.map((e) => e.features["card:amount_sum_1h"]!.value)).toEqual(
          before.entities.card_id.map((e) => e.features["card:amount_sum_1h"]!.value),
        );
      }
      console.log(
        `restart: answered ${elapsed} ms after the kill; attempts http ${viaHttp!.attempts}, grpc ${viaGrpc!.attempts}`,
      );
    } finally {
      await Promise.all([http.close(), grpc.close()]);
    }
  }, 120_000);
});
