/**
 * Feature server figures on loopback, with a view of 10 windowed features in Redis:
 *   (a) single-entity HTTP throughput and p50/p99/p99.9, closed loop, against a bare Fastify route
 *       doing the same raw ioredis read (HGETALL per entity) in the same script: the ratio;
 *   (b) p99 at a fixed 2,000 requests/s for 1-entity and 100-entity HTTP requests;
 *   (c) the same over gRPC (a @grpc/grpc-js client as the load generator).
 * Targets: p99 ≤ 2 ms (1 entity at 2,000/s), ≤ 10 ms (100 entities), throughput ≥ 0.7× the bare route.
 *
 *   npx tsc -b && npx tsx bench/feature-server/run.ts [--runs 3] [--seconds 8] [--entities 5000]
 *
 * Servers run in child processes; latencies are per-response samples (sub-ms), not autocannon's
 * 1-ms histogram. The machine is shared: figures are noisy, medians of the runs are quoted.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadServiceDefinition } from "@tessera/feature-server";
import { RedisOnlineStore, type TileWrite } from "@tessera/stores";
import { parseDefinitionsYaml, ViewState } from "@tessera/transforms";
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
import { DEFINITIONS, KEY } from "./shared.js";

loadStackEnv();
const REDIS_URL = requireEnv("REDIS_URL");
const flags = numericFlags({
  runs: 3,
  seconds: 8,
  entities: 5000,
  eventsPerEntity: 6,
  connections: 8,
  rate: 2000,
});
const prefix = `bench-fs-${randomBytes(3).toString("hex")}:`;

// ── data: events → tiles with libs/transforms, written through the Redis online store ───────────

const view = parseDefinitionsYaml(DEFINITIONS).views[0]!;
async function load(): Promise<void> {
  const now = Date.now();
  const state = new ViewState(view);
  let offset = 0;
  for (let e = 0; e < flags.entities; e++) {
    for (let i = 0; i < flags.eventsPerEntity; i++) {
      const row = {
        card_id: `card-${e}`,
        ts: now - 1 - Math.floor(Math.random() * 86_400_000),
        amount: Math.random() * 500,
      };
      state.apply(row, { offset: offset++, now });
    }
  }
  const store = new RedisOnlineStore({ url: REDIS_URL, keyPrefix: prefix, timeoutMs: 10_000 });
  await store.applyView({ name: view.name, version: view.version, retentionMs: view.retentionMs });
  let batch: TileWrite[] = [];
  const flush = async () => {
    await store.writeBatch({ tiles: batch, offsets: [], freshness: [] });
    batch = [];
  };
  for (const [entity, { tiles }] of state.takeDirty()) {
    for (const t of tiles) {
      batch.push({
        view: view.name,
        version: view.version,
        entity,
        tileStart: t.tileStart,
        aggregation: t.feature,
        state: t.bytes,
      });
    }
    if (batch.length > 5000) await flush();
  }
  await flush();
  await store.close();
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
  grpc?: number;
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

function start(mode: "tessera" | "bare"): Promise<Server> {
  const child = fork(fileURLToPath(new URL("./servers.ts", import.meta.url)), [mode, prefix], {
    execArgv: process.execArgv,
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    env: { ...process.env, REDIS_URL },
  });
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve({ child, ...(m as { http: string; grpc?: number }) }));
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
  const samples: number[] = [];
  let errors = 0;
  // A pool of request bodies (autocannon cycles through them), so entities vary.
  const requests = Array.from({ length: 64 }, () => ({
    method: "POST" as const,
    body: JSON.stringify(body()),
  }));
  const instance = autocannon({
    url,
    connections: options.rate ? 20 : flags.connections,
    duration: flags.seconds,
    headers: { "content-type": "application/json", "x-api-key": KEY },
    requests,
    ...(options.rate ? { overallRate: options.rate } : {}),
  });
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status === 200) samples.push(ms);
    else errors++;
  });
  const result = await instance;
  return summarise(samples, flags.seconds, errors + result.errors + result.timeouts);
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
    features: ["card:*"],
    entities: { card_id: { ids: ids(n) } },
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
  const start = performance.now();
  const end = start + flags.seconds * 1000;
  if (options.rate) {
    // Open loop: requests leave on schedule whatever the server does; latency from the scheduled time.
    const pending: Promise<void>[] = [];
    let issued = 0;
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - start) / 1000) * options.rate);
      for (; issued < due; issued++) pending.push(call(start + (issued / options.rate) * 1000));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(pending);
  } else {
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
  `${fmt(f.rps)} req/s, ${fmt(f.cpuUs)} µs CPU/req, p50 ${fmt(f.p50, 2)} ms, p99 ${fmt(f.p99, 2)} ms, p99.9 ${fmt(f.p999, 2)} ms${f.errors ? `, ${f.errors} errors` : ""}`;

const medianOf = (runs: Figures[]): Figures => ({
  rps: median(runs.map((r) => r.rps)),
  cpuUs: median(runs.map((r) => r.cpuUs)),
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99)),
  p999: median(runs.map((r) => r.p999)),
  errors: runs.reduce((n, r) => n + r.errors, 0),
});

console.log(
  `loading ${fmt(flags.entities)} entities × ${flags.eventsPerEntity} events into Redis (prefix ${prefix}) …`,
);
await load();
const tessera = await start("tessera");
const bare = await start("bare");
const results: Record<string, Figures[]> = {};
/** Runs one phase against `server`, adding its CPU time per request. */
const measure = async (server: Server, phase: () => Promise<Figures>): Promise<Figures> => {
  const before = await cpuOf(server);
  const f = await phase();
  f.cpuUs = ((await cpuOf(server)) - before) / Math.max(1, f.rps * flags.seconds);
  return f;
};
const record = (name: string, f: Figures) => {
  results[name] = [...(results[name] ?? []), f];
  console.log(`  ${name.padEnd(34)} ${show(f)}`);
};
const one = () => ({ features: ["card:*"], entities: { card_id: ids(1) } });
const hundred = () => ({ features: ["card:*"], entities: { card_id: ids(100) } });

try {
  // Warm-up (JIT, connections), not recorded.
  await http(`${tessera.http}/v1/features`, one, { rate: 500 });
  await http(`${bare.http}/bare`, () => ({ ids: ids(1) }), { rate: 500 });
  for (let run = 1; run <= flags.runs; run++) {
    console.log(`run ${run}/${flags.runs}`);
    record(
      "(a) bare route, 1 entity, max",
      await measure(bare, () => http(`${bare.http}/bare`, () => ({ ids: ids(1) }), {})),
    );
    record(
      "(a) tessera HTTP, 1 entity, max",
      await measure(tessera, () => http(`${tessera.http}/v1/features`, one, {})),
    );
    const t = (phase: () => Promise<Figures>) => measure(tessera, phase);
    record(
      `(b) HTTP 1 entity @ ${flags.rate}/s`,
      await t(() => http(`${tessera.http}/v1/features`, one, { rate: flags.rate })),
    );
    record(
      `(b) HTTP 100 entities @ ${flags.rate}/s`,
      await t(() => http(`${tessera.http}/v1/features`, hundred, { rate: flags.rate })),
    );
    record("(c) gRPC 1 entity, max", await t(() => grpcLoad(tessera.grpc!, 1, {})));
    record(
      `(c) gRPC 1 entity @ ${flags.rate}/s`,
      await t(() => grpcLoad(tessera.grpc!, 1, { rate: flags.rate })),
    );
    record(
      `(c) gRPC 100 entities @ ${flags.rate}/s`,
      await t(() => grpcLoad(tessera.grpc!, 100, { rate: flags.rate })),
    );
  }
} finally {
  tessera.child.kill();
  bare.child.kill();
  await dropData();
}

const medians = Object.fromEntries(Object.entries(results).map(([name, runs]) => [name, medianOf(runs)]));
console.log(
  `\nmedians of ${flags.runs} runs (${flags.seconds} s each; 2 shared cores, other engineers' tests running: noisy)`,
);
for (const [name, f] of Object.entries(medians)) console.log(`  ${name.padEnd(34)} ${show(f)}`);
const m = (name: string) => medians[name]!;
const ratio = m("(a) tessera HTTP, 1 entity, max").rps / m("(a) bare route, 1 entity, max").rps;
const cpuRatio = m("(a) bare route, 1 entity, max").cpuUs / m("(a) tessera HTTP, 1 entity, max").cpuUs;
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const p99One = m(`(b) HTTP 1 entity @ ${flags.rate}/s`).p99;
const p99Hundred = m(`(b) HTTP 100 entities @ ${flags.rate}/s`).p99;
const grpcOne = m(`(c) gRPC 1 entity @ ${flags.rate}/s`).p99;
const grpcHundred = m(`(c) gRPC 100 entities @ ${flags.rate}/s`).p99;
console.log("\ntargets");
console.log(
  `  throughput ratio tessera/bare: ${ratio.toFixed(2)}× (target ≥ 0.70×): ${verdict(ratio >= 0.7)}`,
);
console.log(
  `  CPU per request bare/tessera: ${cpuRatio.toFixed(2)}× (the throughput ratio one core would give without contention)`,
);
console.log(
  `  HTTP p99, 1 entity @ ${flags.rate}/s: ${p99One.toFixed(2)} ms (target ≤ 2 ms): ${verdict(p99One <= 2)}`,
);
console.log(
  `  HTTP p99, 100 entities @ ${flags.rate}/s: ${p99Hundred.toFixed(2)} ms (target ≤ 10 ms): ${verdict(p99Hundred <= 10)}`,
);
console.log(
  `  gRPC p99, 1 entity @ ${flags.rate}/s: ${grpcOne.toFixed(2)} ms (target ≤ 2 ms): ${verdict(grpcOne <= 2)}`,
);
console.log(
  `  gRPC p99, 100 entities @ ${flags.rate}/s: ${grpcHundred.toFixed(2)} ms (target ≤ 10 ms): ${verdict(grpcHundred <= 10)}`,
);
console.log(`\nsaved ${saveResult("feature-server", { flags, medians, runs: results, ratio, cpuRatio })}`);
process.exit(0);
