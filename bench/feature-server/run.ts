/**
 * Feature server figures on loopback, against the floor: a bare Fastify route and a bare grpc-js
 * handler that read one precomputed, packed vector of 10 float64 per entity (`GET`/`MGET`) — the
 * least any Node feature server can do. Measured in the same run, median of `--runs`:
 *   server CPU µs per request (from the server process: the steady figure on a busy machine),
 *   req/s (closed loop; shares the cores with the load generator) and p50/p99;
 *   HTTP and gRPC, 1 and 100 entities; p99 at 1,000 req/s (1 entity) and 100 req/s (100 entities),
 *   from an open loop (evenly spaced requests, latency from each one's scheduled time).
 * Targets (issue 15): CPU ≤ 1.5× the floor's (HTTP 100 entities on the example view: ≤ 3×),
 * throughput ≥ 0.7× (HTTP 1 entity), p99 ≤ 2 ms / ≤ 10 ms, no gRPC errors.
 *
 *   npx tsc -b && npx tsx bench/feature-server/run.ts [--view bench|example] [--runs 3] [--seconds 8]
 *     [--entities 5000] [--eventsPerEntity 20] [--spreadMinutes 30] [--connections 8] [--tracing]
 *     [--only "tessera HTTP 1,floor HTTP 1"]   (phases by name; BENCH_CPU_PROF=<dir> profiles the server)
 *     [--noContext]   (no request context: the example view's on-demand feature fails in every row)
 *     [--vectors 0]   (states without their window vector: every read merges tiles, as one after
 *                      the next window boundary since the entity's last flush does)
 *
 * With vectors (the default) every state is re-written, its vector finalised at that moment, just
 * before each Tessera phase, as a live stream keeps re-flushing the entities it sees; each phase says
 * whether a window boundary passed during it (then the reads after it merged tiles).
 *
 * `--tracing`: also a feature server with OpenTelemetry on (every request sampled, spans exported
 * over OTLP to a receiver in this process that discards them), HTTP 1 and 100 entities, to set the
 * cost of tracing on beside the default (off: no hooks, no span objects; see docs/tracing.md).
 *
 * Servers run in child processes, the load generator in this one. Latencies are per-response samples.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadServiceDefinition } from "@tessera/feature-server";
import { RedisOnlineStore } from "@tessera/stores";
import {
  encodeTileState,
  parseDefinitionsYaml,
  sameWindows,
  tileStateExpiry,
  viewRuntime,
} from "@tessera/transforms";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import {
  fmt,
  loadStackEnv,
  median,
  numericFlags,
  quantile,
  requireEnv,
  saveResult,
} from "../support/index.js";
import { benchState, definitionsOf, FLOOR_FEATURES, floorKey, KEY } from "./shared.js";

loadStackEnv();
const REDIS_URL = requireEnv("REDIS_URL");
const flags = numericFlags({
  runs: 3,
  seconds: 8,
  entities: 5000,
  eventsPerEntity: 20,
  spreadMinutes: 30,
  connections: 8,
  vectors: 1,
});
const TRACING = process.argv.includes("--tracing");
/** `--only "<phase>,<phase>"`: run just these phases (e.g. with BENCH_CPU_PROF, to profile one). */
const onlyArg = process.argv.indexOf("--only");
const ONLY = onlyArg >= 0 ? new Set(process.argv[onlyArg + 1]!.split(",")) : undefined;
const viewArg = process.argv.indexOf("--view");
const VIEW = viewArg >= 0 ? process.argv[viewArg + 1]! : "bench";
const prefix = `bench-fs-${randomBytes(3).toString("hex")}:`;

// ── data: events → tile states with libs/transforms, written through the Redis online store ─────

const view = parseDefinitionsYaml(definitionsOf(VIEW)).views[0]!;
const layout = viewRuntime(view).layout;
let bytesPerEntity = 0;
const store = new RedisOnlineStore({ url: REDIS_URL, keyPrefix: prefix, timeoutMs: 10_000 });
const loaded = benchState(view, flags, Date.now());
let owner: Parameters<RedisOnlineStore["writeBatch"]>[0]["owner"];
let stored = -1;

/**
 * Writes every entity's state (stamped with the load's last offset), its window vector finalised
 * now (none with `--vectors 0`). Returns the vectors' time.
 */
async function writeStates(): Promise<number> {
  const at = Date.now();
  const position = { partition: 0, offset: loaded.lastOffset };
  const entities = [...loaded.state.entities];
  let bytes = 0;
  for (let i = 0; i < entities.length; i += 2000) {
    const states = entities.slice(i, i + 2000).map(([entity, tiles]) => {
      const state = encodeTileState(tiles, position, flags.vectors ? at : undefined);
      bytes += state.length;
      return { view: view.name, version: view.version, entity, state, expiresAt: tileStateExpiry(tiles) };
    });
    const next = i + 2000 >= entities.length ? loaded.lastOffset : stored;
    await store.writeBatch({ owner, expectedOffset: stored, offset: next, states });
    stored = next;
  }
  bytesPerEntity = bytes / entities.length;
  return at;
}

async function load(): Promise<void> {
  await store.applyView({ name: view.name, version: view.version, retentionMs: view.retentionMs });
  const claim = await store.claimPartition("bench", view.source.topic, 0);
  owner = { consumerGroup: "bench", topic: view.source.topic, partition: 0, epoch: claim.epoch };
  stored = claim.offset;
  await writeStates();
  // The floor's packed vectors: 10 float64 per entity.
  const redis = new Redis(REDIS_URL);
  const pipeline = redis.pipeline();
  for (let e = 0; e < flags.entities; e++) {
    const vector = Buffer.alloc(FLOOR_FEATURES * 8);
    for (let i = 0; i < FLOOR_FEATURES; i++) vector.writeDoubleLE(Math.random() * 1000, i * 8);
    pipeline.set(floorKey(prefix, `card-${e}`), vector, "EX", 3600);
  }
  await pipeline.exec();
  await redis.quit();
}

/** Removes this run's keys (they would otherwise live until their retention expires). */
async function dropData(): Promise<void> {
  const redis = new Redis(REDIS_URL);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
  await redis.quit();
}

// ── servers ─────────────────────────────────────────────────────────────────────────────────────

interface Server {
  child: ChildProcess;
  http: string;
  grpc: number;
}

/** CPU time (user + system, µs) the server process has used so far. */
function cpuOf(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.child.once("message", (m) => {
      const { cpu } = m as { cpu: NodeJS.CpuUsage };
      resolve(cpu.user + cpu.system);
    });
    server.child.send("cpu");
  });
}

/** Where the traced server exports its spans: accepted and dropped (the export is the server's cost). */
async function discardingReceiver(): Promise<string> {
  const receiver = createServer((request, response) => {
    request.resume();
    request.on("end", () => response.writeHead(200, { "content-type": "application/x-protobuf" }).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiver.unref();
  return `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
}

function start(mode: "tessera" | "tessera-traced" | "floor", otlp?: string): Promise<Server> {
  const child = fork(fileURLToPath(new URL("./servers.ts", import.meta.url)), [mode, prefix, VIEW], {
    // BENCH_CPU_PROF=<dir>: a V8 CPU profile of the feature server (written when it exits).
    execArgv: [
      ...process.execArgv,
      ...(mode === (process.env["BENCH_CPU_PROF_MODE"] ?? "tessera") && process.env["BENCH_CPU_PROF"]
        ? ["--cpu-prof", `--cpu-prof-dir=${process.env["BENCH_CPU_PROF"]}`]
        : []),
    ],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    env: { ...process.env, REDIS_URL, ...(otlp ? { BENCH_OTLP: otlp } : {}) },
  });
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve({ child, ...(m as { http: string; grpc: number }) }));
    child.once("exit", (code) => reject(new Error(`${mode} server exited (${code})`)));
  });
}

// ── load generators ─────────────────────────────────────────────────────────────────────────────

interface Figures {
  rps: number;
  /** Server CPU time per successful request, µs. */
  cpuUs: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
}

function summarise(samples: number[], seconds: number, errors: number): Figures {
  const sorted = samples.sort((a, b) => a - b);
  return {
    rps: samples.length / seconds,
    cpuUs: Number.NaN,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    errors,
  };
}

const ids = (n: number) =>
  Array.from({ length: n }, () => `card-${Math.floor(Math.random() * flags.entities)}`);

async function http(url: string, body: () => object, options: { rate?: number }): Promise<Figures> {
  if (options.rate) return httpOpenLoop(url, body, options.rate);
  const samples: number[] = [];
  let errors = 0;
  // A pool of request bodies (autocannon cycles through them), so entities vary.
  const requests = Array.from({ length: 64 }, () => ({
    method: "POST" as const,
    body: JSON.stringify(body()),
  }));
  const instance = autocannon({
    url,
    connections: flags.connections,
    duration: flags.seconds,
    headers: { "content-type": "application/json", "x-api-key": KEY },
    requests,
  });
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status === 200) samples.push(ms);
    else errors++;
  });
  const result = await instance;
  return summarise(samples, flags.seconds, errors + result.errors + result.timeouts);
}

/**
 * Open loop: calls leave evenly spaced at `rate` per second whatever the server does, and each call's
 * latency counts from its scheduled time (no coordinated omission). autocannon's own rate limit is
 * not this: each connection sends its share back to back at the start of every second, so at
 * "100/s" twenty requests arrive at once and the p99 measured the burst.
 */
async function openLoop(rate: number, call: (scheduled: number) => Promise<void>): Promise<void> {
  const start = performance.now();
  const end = start + flags.seconds * 1000;
  const pending: Promise<void>[] = [];
  let issued = 0;
  while (performance.now() < end) {
    // Call i is due at start + i/rate: all up to now have left (the next tick is ~1 ms away).
    const due = Math.floor(((performance.now() - start) / 1000) * rate) + 1;
    for (; issued < due; issued++) pending.push(call(start + (issued / rate) * 1000));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
}

async function httpOpenLoop(url: string, body: () => object, rate: number): Promise<Figures> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const bodies = Array.from({ length: 64 }, () => Buffer.from(JSON.stringify(body())));
  const samples: number[] = [];
  let errors = 0;
  let sent = 0;
  const call = (scheduled: number) =>
    new Promise<void>((resolve) => {
      const payload = bodies[sent++ % bodies.length]!;
      const headers = {
        "content-type": "application/json",
        "content-length": payload.length,
        "x-api-key": KEY,
      };
      const options = { host: target.hostname, port: target.port, path: target.pathname, method: "POST" };
      const req = request({ ...options, agent, headers, timeout: 2000 }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) samples.push(performance.now() - scheduled);
          else errors++;
          resolve();
        });
      });
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end(payload);
    });
  await openLoop(rate, call);
  agent.destroy();
  return summarise(samples, flags.seconds, errors);
}

async function grpcLoad(
  port: number,
  n: number,
  options: { rate?: number; concurrency?: number },
): Promise<Figures> {
  const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
  // A few channels, as a real client pool would use (one HTTP/2 connection each).
  const clients = Array.from(
    { length: 4 },
    () => new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
  );
  const metadata = new grpc.Metadata();
  metadata.set("x-api-key", KEY);
  const pool = Array.from({ length: 64 }, () => ({
    features: [`${view.name}:*`],
    entities: { card_id: { ids: ids(n) } },
    context: CONTEXT && { amount: { number: CONTEXT.amount } },
  }));
  const samples: number[] = [];
  let errors = 0;
  let sent = 0;
  const call = (scheduled: number) =>
    new Promise<void>((resolve) => {
      const client = clients[sent % clients.length] as unknown as {
        GetOnlineFeatures: (
          r: unknown,
          m: grpc.Metadata,
          o: grpc.CallOptions,
          cb: (e: Error | null) => void,
        ) => void;
      };
      // A deadline, so an overloaded server gives errors rather than an unbounded backlog.
      client.GetOnlineFeatures(
        pool[sent++ % pool.length],
        metadata,
        { deadline: Date.now() + 2000 },
        (error) => {
          if (error) errors++;
          else samples.push(performance.now() - scheduled);
          resolve();
        },
      );
    });
  if (options.rate) await openLoop(options.rate, call);
  else {
    const end = performance.now() + flags.seconds * 1000;
    const worker = async () => {
      while (performance.now() < end) await call(performance.now());
    };
    await Promise.all(Array.from({ length: options.concurrency ?? flags.connections }, worker));
  }
  for (const client of clients) client.close();
  return summarise(samples, flags.seconds, errors);
}

// ── run ─────────────────────────────────────────────────────────────────────────────────────────

const show = (f: Figures) =>
  `${fmt(f.rps)} req/s, ${fmt(f.cpuUs)} µs CPU/req, p50 ${fmt(f.p50, 2)} ms, p99 ${fmt(f.p99, 2)} ms${f.errors ? `, ${f.errors} errors` : ""}`;

const medianOf = (runs: Figures[]): Figures => ({
  rps: median(runs.map((r) => r.rps)),
  cpuUs: median(runs.map((r) => r.cpuUs)),
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99)),
  p999: median(runs.map((r) => r.p999)),
  errors: runs.reduce((n, r) => n + r.errors, 0),
});

console.log(
  `view ${VIEW} (${view.features.length} features); loading ${fmt(flags.entities)} entities × ${flags.eventsPerEntity} events over the last ${flags.spreadMinutes} min into Redis (prefix ${prefix}) …`,
);
await load();
console.log(`  ${fmt(bytesPerEntity)} bytes of tile state per entity`);
const tessera = await start("tessera");
const floor = await start("floor");
const traced = TRACING ? await start("tessera-traced", await discardingReceiver()) : undefined;
const results: Record<string, Figures[]> = {};
/** Runs one phase against `server`, adding its CPU time per request. */
const measure = async (server: Server, phase: () => Promise<Figures>): Promise<Figures> => {
  const before = await cpuOf(server);
  const f = await phase();
  f.cpuUs = ((await cpuOf(server)) - before) / Math.max(1, f.rps * flags.seconds);
  return f;
};
/** Measures and records one phase (unless `--only` leaves it out). */
const record = async (name: string, server: Server, phase: () => Promise<Figures>) => {
  if (ONLY !== undefined && !ONLY.has(name)) return;
  // Tessera phases read states just re-flushed (their vectors hold until the next window boundary).
  const vectorsAt = flags.vectors && server !== floor ? await writeStates() : undefined;
  const f = await measure(server, phase);
  results[name] = [...(results[name] ?? []), f];
  const passed = vectorsAt !== undefined && !sameWindows(layout, vectorsAt, Date.now());
  console.log(
    `  ${name.padEnd(36)} ${show(f)}${passed ? " (a window boundary passed: later reads merged tiles)" : ""}`,
  );
};
const features = [`${view.name}:*`];
// The example view's on-demand feature reads the payment being scored (`context.amount`), as an
// inference call sends it; without it that feature is an error in every row (`--noContext`).
const CONTEXT = view.onDemand?.length && !process.argv.includes("--noContext") ? { amount: 42.5 } : undefined;
const tesseraBody = (n: number) => () => ({ features, entities: { card_id: ids(n) }, context: CONTEXT });
const floorBody = (n: number) => () => ({ ids: ids(n) });
const T = `${tessera.http}/v1/features`;
const F = `${floor.http}/floor`;

try {
  // Warm-up (JIT, connections), not recorded.
  await http(T, tesseraBody(1), { rate: 500 });
  await http(F, floorBody(1), { rate: 500 });
  await http(T, tesseraBody(100), { rate: 50 });
  for (let run = 1; run <= flags.runs; run++) {
    console.log(`run ${run}/${flags.runs}`);
    for (const n of [1, 100]) {
      await record(`floor HTTP ${n}`, floor, () => http(F, floorBody(n), {}));
      await record(`tessera HTTP ${n}`, tessera, () => http(T, tesseraBody(n), {}));
      await record(`floor gRPC ${n}`, floor, () => grpcLoad(floor.grpc, n, {}));
      await record(`tessera gRPC ${n}`, tessera, () => grpcLoad(tessera.grpc, n, {}));
    }
    await record("floor HTTP 1 @ 1000/s", floor, () => http(F, floorBody(1), { rate: 1000 }));
    await record("tessera HTTP 1 @ 1000/s", tessera, () => http(T, tesseraBody(1), { rate: 1000 }));
    await record("floor HTTP 100 @ 100/s", floor, () => http(F, floorBody(100), { rate: 100 }));
    await record("tessera HTTP 100 @ 100/s", tessera, () => http(T, tesseraBody(100), { rate: 100 }));
    if (traced) {
      for (const n of [1, 100]) {
        await record(`tessera HTTP ${n} (again, tracing off)`, tessera, () => http(T, tesseraBody(n), {}));
        const url = `${traced.http}/v1/features`;
        await record(`tessera HTTP ${n} tracing on`, traced, () => http(url, tesseraBody(n), {}));
      }
    }
  }
} finally {
  tessera.child.kill("SIGTERM");
  floor.child.kill();
  traced?.child.kill();
  await new Promise((resolve) => tessera.child.once("exit", resolve));
  await store.close();
  await dropData();
}

const medians = Object.fromEntries(Object.entries(results).map(([name, runs]) => [name, medianOf(runs)]));
console.log(`\nmedians of ${flags.runs} runs (${flags.seconds} s each), view ${VIEW}`);
for (const [name, f] of Object.entries(medians)) console.log(`  ${name.padEnd(36)} ${show(f)}`);
if (ONLY !== undefined) {
  console.log(`\n--only ${[...ONLY].join(",")}: no verdicts (they need every phase)`);
  process.exit(0);
}
const m = (name: string) => medians[name]!;
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const cpu = (what: string) => m(`tessera ${what}`).cpuUs / m(`floor ${what}`).cpuUs;
const targets: [string, number, boolean][] = [
  ["HTTP 1 entity CPU/req vs floor (≤ 1.5×)", cpu("HTTP 1"), cpu("HTTP 1") <= 1.5],
  [
    "HTTP 1 entity throughput vs floor (≥ 0.7×)",
    m("tessera HTTP 1").rps / m("floor HTTP 1").rps,
    m("tessera HTTP 1").rps / m("floor HTTP 1").rps >= 0.7,
  ],
  [
    `HTTP 100 entities CPU/req vs floor (≤ ${VIEW === "example" ? 3 : 1.5}×)`,
    cpu("HTTP 100"),
    cpu("HTTP 100") <= (VIEW === "example" ? 3 : 1.5),
  ],
  ["gRPC 1 entity CPU/req vs grpc-js floor (≤ 1.5×)", cpu("gRPC 1"), cpu("gRPC 1") <= 1.5],
  ["gRPC 100 entities CPU/req vs grpc-js floor (≤ 1.5×)", cpu("gRPC 100"), cpu("gRPC 100") <= 1.5],
  [
    "HTTP 1 entity p99 @ 1000/s (≤ 2 ms)",
    m("tessera HTTP 1 @ 1000/s").p99,
    m("tessera HTTP 1 @ 1000/s").p99 <= 2,
  ],
  [
    "HTTP 100 entities p99 @ 100/s (≤ 10 ms)",
    m("tessera HTTP 100 @ 100/s").p99,
    m("tessera HTTP 100 @ 100/s").p99 <= 10,
  ],
  [
    "gRPC errors (0)",
    m("tessera gRPC 1").errors + m("tessera gRPC 100").errors,
    m("tessera gRPC 1").errors + m("tessera gRPC 100").errors === 0,
  ],
];
if (traced) {
  for (const n of [1, 100]) {
    const on = m(`tessera HTTP ${n} tracing on`).cpuUs / m(`tessera HTTP ${n} (again, tracing off)`).cpuUs;
    console.log(`tracing on, HTTP ${n}: ${on.toFixed(3)}× the CPU per request of tracing off`);
  }
}
console.log("\ntargets");
for (const [name, value, ok] of targets)
  console.log(`  ${name.padEnd(52)} ${value.toFixed(2)}: ${verdict(ok)}`);
console.log(
  `\nsaved ${saveResult(`feature-server-${VIEW}`, { flags, view: VIEW, bytesPerEntity, medians, runs: results })}`,
);
process.exit(0);
