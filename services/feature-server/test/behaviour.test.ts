/**
 * Behaviour around the serving core, in-process over the memory store: JWT principals, load
 * shedding, graceful drain, sampled feature logging, the definitions file and the config loader.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { ServedFeaturesRecord } from "@tessera/kafka";
import { loadDefinitions } from "@tessera/runtime";
import { MemoryOnlineStore, type OnlineStore } from "@tessera/stores";
import { createSigner } from "fast-jwt";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import {
  type FeatureServerHandle,
  featureServerConfig,
  loadFeatureServerConfig,
  loadServiceDefinition,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, DEFINITIONS_YAML, definitions, events, KEYS, writeTiles } from "./fixtures.js";

const silent = pino({ level: "silent" });
const defs = definitions();
const now = Date.now();
const rows = events(now, 300, 5);
const servers: FeatureServerHandle[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

async function serve(config: Record<string, unknown>, store?: OnlineStore, extra: object = {}) {
  const memory = store ?? new MemoryOnlineStore();
  if (!store) await writeTiles(memory, defs, rows, now);
  const server = await startFeatureServer(
    featureServerConfig({
      http: { port: 0 },
      grpc: { port: 0 },
      // A short drain: afterEach's stop must end well inside the 10 s hook timeout, also when a
      // connection lingers on a loaded machine (CI once waited the default 10 s drain out). The
      // drain test passes its own reliability.
      reliability: { maxEventLoopDelayMs: 0, drainTimeoutMs: 2000 },
      ...config,
    }),
    { store: memory, definitions: defs, apiKeys: apiKeys(), logger: silent, ...extra },
  );
  servers.push(server);
  return server;
}

const post = (
  server: FeatureServerHandle,
  body: unknown,
  headers: Record<string, string> = { "x-api-key": KEYS.all },
) =>
  fetch(`${server.url}/v1/features`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
const cardRequest = { features: ["card:n_1h"], entities: { card_id: ["card-1"] } };

describe("JWT", () => {
  it("admits a valid token to its views only; refuses expired, unsigned or view-less tokens", async () => {
    const secret = "a-test-secret-of-enough-length-0123456789";
    const server = await serve({ auth: { jwtSecret: secret } });
    const sign = (claims: Record<string, unknown>) =>
      createSigner({ key: secret, algorithm: "HS256", ...("exp" in claims ? {} : { expiresIn: 60_000 }) })(
        claims,
      );
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const token = sign({ sub: "svc-a", views: ["card"] });
    expect((await post(server, cardRequest, bearer(token))).status).toBe(200);
    expect(
      (await post(server, { features: ["merchant:n_1h"], entities: { merchant_id: ["m-1"] } }, bearer(token)))
        .status,
    ).toBe(403);
    expect(
      (
        await post(
          server,
          cardRequest,
          bearer(sign({ sub: "svc-a", views: ["card"], exp: Math.floor(Date.now() / 1000) - 10 })),
        )
      ).status,
    ).toBe(401);
    expect((await post(server, cardRequest, bearer(sign({ sub: "svc-a" })))).status).toBe(401);
    const forged = `${token.slice(0, token.lastIndexOf("."))}.${"A".repeat(43)}`;
    const refused = await post(server, cardRequest, bearer(forged));
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { field: string }).field).toBe("authorization");
  });
});

describe("load shedding", () => {
  it("under pressure: feature requests get 503 + Retry-After on both protocols, ops routes still answer", async () => {
    // A heap bound of 1 byte keeps the process permanently "under pressure".
    const server = await serve({
      reliability: { maxEventLoopDelayMs: 0, maxHeapUsedBytes: 1, retryAfterSeconds: 3 },
    });
    await new Promise((resolve) => setTimeout(resolve, 1200)); // one under-pressure sample
    const res = await post(server, cardRequest);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("3");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
    const client = new Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("x-api-key", KEYS.all);
    const code = await new Promise<number | undefined>((resolve) =>
      (
        client as unknown as {
          GetOnlineFeatures: (
            r: unknown,
            m: grpc.Metadata,
            cb: (e: grpc.ServiceError | null) => void,
          ) => void;
        }
      ).GetOnlineFeatures(
        { features: ["card:n_1h"], entities: { card_id: { ids: ["card-1"] } } },
        metadata,
        (error: grpc.ServiceError | null) => resolve(error?.code),
      ),
    );
    client.close();
    expect(code).toBe(grpc.status.UNAVAILABLE);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/tessera_feature_server_shed_total\{protocol="http"\} [1-9]/);
    expect(metrics).toMatch(/tessera_feature_server_shed_total\{protocol="grpc"\} [1-9]/);
  });
});

describe("gRPC in-flight bound", () => {
  it("sheds calls beyond reliability.maxGrpcInFlight with UNAVAILABLE, serves the rest", async () => {
    const memory = new MemoryOnlineStore();
    await writeTiles(memory, defs, rows, now);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const gated: OnlineStore = {
      applyView: (v) => memory.applyView(v),
      writeBatch: (b) => memory.writeBatch(b),
      readOffsets: (g, t) => memory.readOffsets(g, t),
      claimPartition: (g, t, p) => memory.claimPartition(g, t, p),
      close: () => memory.close(),
      readStates: async (...args) => {
        await gate;
        return memory.readStates(...args);
      },
    };
    const server = await serve(
      { reliability: { maxEventLoopDelayMs: 0, maxGrpcInFlight: 1, storeTimeoutMs: 10_000 } },
      gated,
    );
    const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
    const client = new Client(
      `127.0.0.1:${server.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as unknown as {
      GetOnlineFeatures: (r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void) => void;
      close: () => void;
    };
    const metadata = new grpc.Metadata();
    metadata.set("x-api-key", KEYS.all);
    const call = () =>
      new Promise<number>((resolve) =>
        client.GetOnlineFeatures(
          { features: ["card:n_1h"], entities: { card_id: { ids: ["card-1"] } } },
          metadata,
          (e) => resolve(e?.code ?? grpc.status.OK),
        ),
      );
    const first = call();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await call()).toBe(grpc.status.UNAVAILABLE);
    release();
    expect(await first).toBe(grpc.status.OK);
    expect(await call()).toBe(grpc.status.OK);
    client.close();
  });
});

describe("graceful shutdown", () => {
  it("lets in-flight requests finish, refuses new ones, and does not wait on idle keep-alive connections", async () => {
    const memory = new MemoryOnlineStore();
    await writeTiles(memory, defs, rows, now);
    let release: () => void = () => {};
    let reading = false;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The memory store behind a gate: a read that takes as long as the test wants.
    const gated: OnlineStore = {
      applyView: (v) => memory.applyView(v),
      writeBatch: (b) => memory.writeBatch(b),
      readOffsets: (g, t) => memory.readOffsets(g, t),
      claimPartition: (g, t, p) => memory.claimPartition(g, t, p),
      close: () => memory.close(),
      readStates: async (...args) => {
        reading = true;
        await gate;
        return memory.readStates(...args);
      },
    };
    const server = await serve({ reliability: { maxEventLoopDelayMs: 0, storeTimeoutMs: 10_000 } }, gated);
    const inFlight = post(server, cardRequest);
    // Wait until the request is inside the handler (reading the store).
    while (!reading) await new Promise((resolve) => setTimeout(resolve, 10));
    const stopping = server.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const late = await post(server, cardRequest).then(
      (r) => r.status,
      () => "refused",
    );
    expect([503, "refused"]).toContain(late);
    release();
    expect((await inFlight).status).toBe(200);
    const started = Date.now();
    await stopping;
    expect(Date.now() - started).toBeLessThan(2000); // no keep-alive connection holds it open
  });
});

describe("feature logging", () => {
  it("queues sampled vectors off the request path and sends them in batches", async () => {
    const sent: ServedFeaturesRecord[][] = [];
    const server = await serve({ featureLog: { sampleRate: 1, flushIntervalMs: 20 } }, undefined, {
      featureLogSink: { send: async (records: ServedFeaturesRecord[]) => void sent.push(records) },
    });
    const res = await post(server, {
      features: ["card:n_1h", "card:last_amounts", "merchant:n_1h"],
      entities: { card_id: ["card-1", "card-2"], merchant_id: ["m-1"] },
    });
    const body = (await res.json()) as { asOf: number };
    await new Promise((resolve) => setTimeout(resolve, 100));
    const records = sent.flat();
    expect(records).toHaveLength(3);
    const card1 = records.find((r) => r.entity === "card-1")!;
    expect(card1).toMatchObject({ view: "card", version: defs.views[0]!.version, as_of: body.asOf });
    expect(Object.keys(card1.values)).toEqual(["n_1h", "last_amounts"]);
    expect(Array.isArray(card1.values["last_amounts"])).toBe(true);
    expect(new Set(records.map((r) => r.request_id)).size).toBe(1);
  });

  it("samples about the configured share", async () => {
    const sent: ServedFeaturesRecord[] = [];
    const server = await serve({ featureLog: { sampleRate: 0.25, flushIntervalMs: 20 } }, undefined, {
      featureLogSink: { send: async (records: ServedFeaturesRecord[]) => void sent.push(...records) },
    });
    const ids = Array.from({ length: 400 }, (_, i) => `card-${i % 5}`);
    const response = await post(server, { features: ["card:n_1h"], entities: { card_id: ids } });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sent.length).toBeGreaterThan(60);
    expect(sent.length).toBeLessThan(140);
  });
});

describe("configuration", () => {
  it("loads a YAML definitions file and a config file, env overriding the file", async () => {
    const dir = tmpdir();
    const definitionsFile = join(dir, `fs-defs-${process.pid}.yaml`);
    writeFileSync(definitionsFile, DEFINITIONS_YAML);
    expect((await loadDefinitions(definitionsFile)).views.map((v) => v.name)).toEqual(["card", "merchant"]);
    const configFile = join(dir, `fs-config-${process.pid}.yaml`);
    writeFileSync(
      configFile,
      `definitions: ${definitionsFile}\nhttp: { port: 9999 }\nreliability: { fallback: stale }\n`,
    );
    const config = loadFeatureServerConfig({
      file: configFile,
      env: { TESSERA_FEATURE_SERVER_HTTP_PORT: "8181" },
    });
    expect(config.http.port).toBe(8181);
    expect(config.reliability.fallback).toBe("stale");
    expect(config.grpc.port).toBe(50051);
    expect(() =>
      loadFeatureServerConfig({
        file: configFile,
        env: { TESSERA_FEATURE_SERVER_RELIABILITY_FALLBACK: "maybe" },
      }),
    ).toThrow(/reliability\.fallback.*TESSERA_FEATURE_SERVER_RELIABILITY_FALLBACK/);
  });
});

describe("TLS", () => {
  it("serves HTTPS and gRPC over TLS with the configured certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fs-tls-"));
    const [keyFile, certFile] = [join(dir, "key.pem"), join(dir, "cert.pem")];
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        keyFile,
        "-out",
        certFile,
      ],
      { stdio: "ignore" },
    );
    const ca = readFileSync(certFile);
    const server = await serve({ tls: { certFile, keyFile } });
    expect(server.url.startsWith("https://")).toBe(true);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(
        `${server.url}/v1/features/card_id/card-1?features=card:n_1h`,
        { ca, headers: { "x-api-key": KEYS.all } },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(200);
    const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
    const client = new Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createSsl(ca));
    const metadata = new grpc.Metadata();
    metadata.set("x-api-key", KEYS.all);
    const error = await new Promise<grpc.ServiceError | null>((resolve) =>
      (
        client as unknown as {
          GetOnlineFeatures: (
            r: unknown,
            m: grpc.Metadata,
            cb: (e: grpc.ServiceError | null) => void,
          ) => void;
        }
      ).GetOnlineFeatures(
        { features: ["card:n_1h"], entities: { card_id: { ids: ["card-1"] } } },
        metadata,
        resolve,
      ),
    );
    client.close();
    expect(error).toBeNull();
  }, 30_000);
});
