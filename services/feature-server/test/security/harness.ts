/**
 * The secured feature server the hostile-case tests attack, as an operator would run it: a keys
 * file with per-view keys and a rate-limited key, HS256 JWTs with a required issuer and audience
 * (or an RSA public key), tiles in the real Redis of the test stack. One server per test file,
 * in-process, with HTTP, gRPC (grpc-js client) and raw-bytes gRPC helpers, and the check every
 * test ends with: /healthz answers and other callers are served as before.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer, type Server, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { RedisOnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { createSigner } from "fast-jwt";
import { pino } from "pino";
import { expect } from "vitest";
import { services, uniqueName } from "../../../../test/support/index.js";
import {
  configSchema,
  type FeatureServerHandle,
  featureServerConfig,
  hashKey,
  loadServiceDefinition,
  startFeatureServer,
} from "../../src/index.js";
import { DEFINITIONS_YAML, events, writeTiles } from "../fixtures.js";

// The fixture views plus the on-demand feature of examples/payments (text → double in CEL).
export const YAML = DEFINITIONS_YAML.replace(
  "    onDemand:\n",
  '    onDemand:\n      - { name: amount_ratio, expr: "amount_mean_6h == null || amount_mean_6h == 0.0 ? 0.0 : double(context.amount) / amount_mean_6h" }\n',
);

export const KEYS = {
  all: "sk_all_7d1f0c3b9a8e4d2f6b5a4c3d2e1f0a9b",
  other: "sk_other_0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d",
  cardOnly: "sk_card_1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e",
  slow: "sk_slow_9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c",
};

export const JWT = {
  secret: "hs256-secret-for-the-hostile-tests-0123456789abcdef",
  issuer: "https://issuer.tessera.test",
  audience: "tessera-feature-server",
};

/** An HS256 token for the harness server (1-minute lifetime unless the claims say otherwise). */
export function hs256(claims: Record<string, unknown>, algorithm: "HS256" | "HS384" | "HS512" = "HS256") {
  const base = { iss: JWT.issuer, aud: JWT.audience, sub: "svc", views: ["*"] };
  const timing = "exp" in claims ? {} : { expiresIn: 60_000 };
  const payload = Object.fromEntries(
    Object.entries({ ...base, ...claims }).filter(([, value]) => value !== undefined),
  );
  return createSigner({ key: JWT.secret, algorithm, ...timing })(payload);
}

export interface AuditLine {
  protocol: string;
  key: string | null;
  views: string[];
  status: number | string;
}

export interface Secured {
  server: FeatureServerHandle;
  url: string;
  grpcTarget: string;
  audit: AuditLine[];
  stop(): Promise<void>;
}

/** Does this build's configuration have the setting? (The tests also run against older builds.) */
const hasSetting = (section: string, key: string) =>
  configSchema.properties?.[section]?.properties?.[key] !== undefined;

/**
 * `jwt` replaces the HS256 settings (e.g. with `{ jwtPublicKeyFile }`); `config` adds settings.
 * The failed-authentication budget is raised (tests refuse many tokens on purpose) unless
 * `defaultAuthLimits` keeps the documented default.
 */
export async function startSecured(
  options: {
    config?: Record<string, unknown>;
    jwt?: Record<string, unknown>;
    defaultAuthLimits?: boolean;
  } = {},
): Promise<Secured> {
  const defs = parseDefinitionsYaml(YAML);
  const now = Date.now();
  const prefix = `${uniqueName("fs-hostile")}:`;
  const direct = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: prefix });
  await writeTiles(direct, defs, events(now, 400, 10), now);
  await direct.close();

  const dir = mkdtempSync(join(tmpdir(), "tessera-hostile-"));
  const keysFile = join(dir, "keys.yaml");
  const entry = (id: string, key: string, views: string[], rate = 100_000, burst = 100_000) =>
    `  - { id: ${id}, sha256: ${hashKey(key)}, views: ${JSON.stringify(views)}, ratePerSecond: ${rate}, burst: ${burst} }`;
  writeFileSync(
    keysFile,
    [
      "keys:",
      entry("all", KEYS.all, ["*"]),
      entry("other", KEYS.other, ["*"]),
      entry("card-only", KEYS.cardOnly, ["card"]),
      entry("slow", KEYS.slow, ["*"], 1, 3),
      "",
    ].join("\n"),
  );

  const audit: AuditLine[] = [];
  const auditLog = pino(
    { level: "info" },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n")) {
          if (!line) continue;
          const parsed = JSON.parse(line) as AuditLine & { audit?: boolean };
          if (parsed.audit) audit.push(parsed);
        }
        done();
      },
    }),
  );
  const store = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: prefix, timeoutMs: 1000 });
  const server = await startFeatureServer(
    featureServerConfig({
      http: { port: 0 },
      grpc: { port: 0 },
      auth: {
        keysFile,
        ...(options.jwt ?? { jwtSecret: JWT.secret, jwtIssuer: JWT.issuer, jwtAudience: JWT.audience }),
      },
      reliability: { storeTimeoutMs: 1000, maxEventLoopDelayMs: 0 },
      ...(hasSetting("limits", "authFailureBurst") && !options.defaultAuthLimits
        ? { limits: { authFailureBurst: 10_000 } }
        : {}),
      ...options.config,
    }),
    { store, definitions: defs, logger: pino({ level: "silent" }), auditLog },
  );
  return {
    server,
    url: server.url,
    grpcTarget: `127.0.0.1:${server.grpcPort}`,
    audit,
    stop: async () => {
      await server.stop();
      await store.close();
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field in the tests
  body: any;
  text: string;
}

/**
 * One HTTP request over node:http (so the client address can be chosen and any method or body
 * sent), answered as status, headers and parsed JSON (when it is JSON).
 */
export function http(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers,
        localAddress: options.localAddress,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, body, text });
        });
      },
    );
    req.on("error", reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** POST /v1/features with a JSON body (an object, or raw text sent as it is). */
export const post = (
  base: string,
  body: unknown,
  headers: Record<string, string> = { "x-api-key": KEYS.all },
  localAddress?: string,
) =>
  http(`${base}/v1/features`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    localAddress,
  });

export interface GrpcAnswer {
  code: grpc.status;
  details: string;
  field: string | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: the generic client's response is untyped JSON
  response: any;
}

const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
const RawClient = grpc.makeGenericClientConstructor(
  {
    GetOnlineFeatures: {
      path: "/tessera.v1.FeatureService/GetOnlineFeatures",
      requestStream: false,
      responseStream: false,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (bytes: Buffer) => bytes,
      responseDeserialize: (bytes: Buffer) => bytes,
    },
  },
  "RawFeatureService",
);

function unary(client: grpc.Client, request: unknown, metadata: Record<string, string>): Promise<GrpcAnswer> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    (client as unknown as Record<string, (...args: unknown[]) => void>)["GetOnlineFeatures"]!(
      request,
      md,
      { deadline: Date.now() + 20_000 },
      (error: grpc.ServiceError | null, response: unknown) => {
        client.close();
        resolve({
          code: error ? error.code : grpc.status.OK,
          details: error?.details ?? "",
          field: error?.metadata?.get("field")[0]?.toString(),
          response,
        });
      },
    );
  });
}

/** GetOnlineFeatures through @grpc/grpc-js with the proto's types (a well-behaved client). */
export const grpcCall = (
  target: string,
  request: unknown,
  metadata: Record<string, string> = { "x-api-key": KEYS.all },
) => unary(new Client(target, grpc.credentials.createInsecure()), request, metadata);

/** GetOnlineFeatures with the message bytes as given: what a hostile client can put on the wire. */
export const grpcRaw = (
  target: string,
  bytes: Buffer,
  metadata: Record<string, string> = { "x-api-key": KEYS.all },
) => unary(new RawClient(target, grpc.credentials.createInsecure()), bytes, metadata);

/**
 * A TCP relay whose upstream connections come from `localAddress` (e.g. 127.0.0.2): a second
 * client machine, for gRPC, whose client library cannot choose its source address.
 */
export async function relayFrom(
  localAddress: string,
  target: string,
): Promise<{ target: string; close(): Promise<void> }> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(":")),
    Number(target.slice(target.lastIndexOf(":") + 1)),
  ];
  const server: Server = createServer((client) => {
    const upstream = tcpConnect({ host, port, localAddress });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: relayPort } = server.address() as { port: number };
  return {
    target: `127.0.0.1:${relayPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

const GOOD = {
  features: ["card:amount_max_1d", "merchant:amount_sum_1d"],
  entities: { card_id: ["card-1"], merchant_id: ["m-1"] },
};

/**
 * The server still works for everyone else: /healthz and /readyz answer 200 and another key's
 * request gets 200 on HTTP and OK on gRPC, with values (not errors).
 */
export async function expectOthersServed(secured: Secured, key = KEYS.other): Promise<void> {
  expect((await http(`${secured.url}/healthz`)).status).toBe(200);
  const ready = await http(`${secured.url}/readyz`);
  expect(ready.status, ready.text).toBe(200);
  const res = await post(secured.url, GOOD, { "x-api-key": key });
  expect(res.status, res.text).toBe(200);
  expect(res.body.entities.card_id.results[0].statuses).toContain("present");
  const answer = await grpcCall(
    secured.grpcTarget,
    { features: GOOD.features, entities: { card_id: { ids: ["card-1"] }, merchant_id: { ids: ["m-1"] } } },
    { "x-api-key": key },
  );
  expect(answer.code, answer.details).toBe(grpc.status.OK);
  expect(answer.response.results).toHaveLength(2);
}
