/**
 * Stream processor, end to end: Kafka → decode → tiles → atomic flush to Redis (and Cassandra) →
 * offsets, in events/s, divided by the raw kafkajs consume rate of the same topic measured here;
 * then event-to-online freshness (p50/p99) at a fixed 10,000 events/s.
 *
 *   npm run stack:up && node --conditions=@tessera/source --import tsx bench/processor/run.ts [--events 200000] [--runs 3] [--entities 10000]
 *      [--partitions 4] [--rate 10000] [--seconds 20] [--redis 1] [--cassandra 1] [--freshness 1]
 *      [--view example|bench] [--spreadMinutes 0]
 *
 * `--view`: the example view users start from (examples/payments: 8 features, hops 30 s/1 m/5 m, an
 * HLL, a stddev over 6 h) or the bench view of bench/feature-server (10 features, hops 5 min/1 h).
 * `--spreadMinutes`: event times spread over the last N minutes, as a real backlog is; 0 stamps
 * them as a live stream at `--rate` would be.
 * Targets (issue 15): Redis, exactly-once, FeatureUpdates on: ≥ 150k events/s per process and
 * ≤ 6 µs CPU per event on the bench view, ≤ 10 µs on the example view with the 30-minute spread;
 * freshness p99 ≤ 1 s at 10k events/s; Cassandra ≥ 30k events/s.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKafka, ensureTopics, parseAvroSchema, SchemaRegistry, valueSubject } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { createOnlineStore } from "@tessera/stores";
import { loadProcessorConfig, type Processor, startProcessor } from "@tessera/stream-processor";
import { Redis } from "ioredis";
import { BENCH_DEFINITIONS } from "../feature-server/shared.js";
import {
  fmt,
  loadStackEnv,
  median,
  numericFlags,
  repoRoot,
  requireEnv,
  saveResult,
} from "../support/index.js";

loadStackEnv();
const brokers = requireEnv("KAFKA_BROKERS").split(",");
const registryUrl = requireEnv("SCHEMA_REGISTRY_URL");
const redisUrl = requireEnv("REDIS_URL");
const flags = numericFlags({
  events: 200_000,
  runs: 3,
  entities: 10_000,
  partitions: 4,
  rate: 10_000,
  seconds: 20,
  redis: 1,
  cassandra: 1,
  freshness: 1,
  /** FeatureUpdates on in the freshness run (1) or not (0). */
  features: 1,
  spreadMinutes: 0,
});
const viewArg = process.argv.indexOf("--view");
const VIEW = viewArg >= 0 ? process.argv[viewArg + 1]! : "example";
const kafka = createKafka({ brokers, clientId: "bench-processor", logLevel: "error" });
const registry = new SchemaRegistry(registryUrl);
const schema = JSON.parse(readFileSync(join(repoRoot, "schemas/avro/payment_transaction.avsc"), "utf8"));
const type = parseAvroSchema(schema);
const stamp = `${Date.now().toString(36)}`;
const dir = mkdtempSync(join(tmpdir(), "bench-processor-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The example card-payment view (examples/payments/features.yaml) on a topic of our own.
function definitions(topic: string): string {
  const text = (
    VIEW === "bench"
      ? BENCH_DEFINITIONS.replace("timestamp: ts", "timestamp: event_time")
      : readFileSync(join(repoRoot, "examples/payments/features.yaml"), "utf8")
  ).replace("topic: payments.transactions", `topic: ${topic}`);
  const file = join(dir, `${topic}.yaml`);
  writeFileSync(file, text);
  return file;
}

async function makeTopic(name: string): Promise<{ topic: string; encode: (e: object) => Buffer }> {
  const topic = `bench-proc-${name}-${stamp}`;
  await ensureTopics(kafka, [
    { topic, partitions: flags.partitions },
    { topic: `${topic}.dlq`, partitions: 1 },
    { topic: `${topic}.features`, partitions: flags.partitions },
  ]);
  const id = await registry.register(valueSubject(topic), schema);
  const header = Buffer.from([0, 0, 0, 0, 0]);
  header.writeInt32BE(id, 1);
  return { topic, encode: (e) => Buffer.concat([header, type.toBuffer(e)]) };
}

const countries = ["FR", "DE", "US", "GB", "ES", "IT"];
function payment(i: number, eventTime: number) {
  return {
    transaction_id: `t${i}`,
    card_id: `card-${(i * 7919) % flags.entities}`,
    merchant_id: `m-${i % 500}`,
    amount: ((i * 31) % 50_000) / 100,
    currency: "EUR",
    country: countries[i % countries.length]!,
    event_time: eventTime,
  };
}

async function fill(topic: string, encode: (e: object) => Buffer, n: number): Promise<number> {
  const producer = kafka.producer();
  await producer.connect();
  const now = Date.now();
  let bytes = 0;
  for (let i = 0; i < n; i += 2000) {
    const messages = [];
    for (let j = i; j < Math.min(n, i + 2000); j++) {
      // Stamped as a live stream at the freshness rate would be (the backlog spans n / rate seconds),
      // or spread over the last --spreadMinutes.
      const at =
        flags.spreadMinutes > 0
          ? now - 1 - ((j * 2_654_435_761) % (flags.spreadMinutes * 60_000))
          : now - Math.floor(((n - j) / flags.rate) * 1000);
      const value = encode(payment(j, at));
      bytes += value.length;
      messages.push({ key: `card-${(j * 7919) % flags.entities}`, value });
    }
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
  return bytes / n;
}

interface Rate {
  /** Events (messages) per wall-clock second. */
  rate: number;
  /** CPU microseconds this process spent per event: what the rate would be on a core of its own. */
  cpuMicros: number;
}

/** Raw kafkajs: consume the whole topic, count messages, nothing else. */
async function rawConsume(topic: string, n: number): Promise<Rate> {
  const consumer = kafka.consumer({ groupId: `bench-raw-${topic}-${Math.random()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let received = 0;
  let firstAt = 0;
  let cpu = process.cpuUsage();
  const seconds = await new Promise<number>((resolve) => {
    void consumer.run({
      partitionsConsumedConcurrently: 2,
      eachBatch: async ({ batch }) => {
        if (firstAt === 0) {
          firstAt = performance.now();
          cpu = process.cpuUsage();
        }
        received += batch.messages.length;
        if (received >= n) resolve((performance.now() - firstAt) / 1000);
      },
    });
  });
  const used = process.cpuUsage(cpu);
  await consumer.disconnect();
  return { rate: n / seconds, cpuMicros: (used.user + used.system) / n };
}

type StoreKind = "redis" | "cassandra";

function processorConfig(topic: string, store: StoreKind, name: string, publishFeatures: boolean) {
  return loadProcessorConfig({
    env: {},
    overrides: {
      name,
      definitions: definitions(topic),
      kafka: { brokers, schemaRegistryUrl: registryUrl },
      store: {
        kind: store,
        redisUrl,
        keyPrefix: `bench-${name}:`,
        keyspace: `bench_proc_${stamp}`,
        cassandraContactPoints: (process.env["CASSANDRA_CONTACT_POINTS"] ?? "127.0.0.1:9042").split(","),
        cassandraLocalDc: process.env["CASSANDRA_LOCAL_DC"] ?? "datacenter1",
        timeoutMs: 10_000,
      },
      topics: { deadLetter: `${topic}.dlq`, features: `${topic}.features` },
      publishFeatures,
      ops: { port: 0 },
    },
  });
}

async function storedProgress(
  kind: StoreKind,
  groupId: string,
  topic: string,
  probe: ReturnType<typeof createOnlineStore>,
) {
  void kind;
  const offsets = await probe.readOffsets(groupId, topic);
  let n = 0;
  for (const offset of offsets.values()) n += offset + 1;
  return n;
}

/** Processor over a full topic: events/s from its first stored offset to the last. */
async function processorRate(
  topic: string,
  n: number,
  store: StoreKind,
  publishFeatures: boolean,
): Promise<Rate> {
  const name = `bench-${store}-${Math.random().toString(36).slice(2, 8)}`;
  const config = processorConfig(topic, store, name, publishFeatures);
  const probe = createOnlineStore(
    store === "redis"
      ? { kind: "redis", url: redisUrl, keyPrefix: `bench-${name}:` }
      : {
          kind: "cassandra",
          contactPoints: config.store.cassandraContactPoints,
          localDataCenter: config.store.cassandraLocalDc,
          keyspace: config.store.keyspace,
        },
  );
  const processor: Processor = await startProcessor(config, { logger: quietLogger() });
  const profiler = process.env["BENCH_CPU_PROF"] ? phaseProfiler(process.env["BENCH_CPU_PROF"]) : undefined;
  let startAt = 0;
  let startCount = 0;
  let cpu = process.cpuUsage();
  let failed: unknown;
  processor.done.catch((error) => {
    failed = error;
  });
  for (;;) {
    if (failed) throw new Error(`the ${store} processor stopped: ${(failed as Error).message}`);
    const done = await storedProgress(store, processor.groupId, topic, probe).catch(() => 0);
    if (startAt === 0 && done > 0) {
      startAt = performance.now();
      startCount = done;
      cpu = process.cpuUsage();
      await profiler?.start();
    }
    if (done >= n) break;
    await sleep(20);
  }
  const seconds = (performance.now() - startAt) / 1000;
  const used = process.cpuUsage(cpu);
  await profiler?.stop(`${store}${publishFeatures ? "" : "-no-updates"}`);
  await processor.stop();
  await probe.close();
  if (store === "redis") await dropRedisKeys(config.store.keyPrefix);
  return { rate: (n - startCount) / seconds, cpuMicros: (used.user + used.system) / (n - startCount) };
}

/**
 * Deletes a phase's keys once it is measured. Left behind, they slow the phases after it: six
 * 1M-event runs left Redis holding 2.6 GB, and the same command then measured 27–44 µs per event
 * instead of 19.
 */
async function dropRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 10_000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/**
 * BENCH_CPU_PROF=<dir>: a CPU profile of the measured processor phase only (not the topic fill or
 * the raw consume that share this process), written as <dir>/<phase>.cpuprofile.
 */
function phaseProfiler(dir: string) {
  const session = new Session();
  return {
    async start() {
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 200 }); // µs: a short phase needs it
      await session.post("Profiler.start");
    },
    async stop(phase: string) {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(join(dir, `${phase}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/**
 * Freshness at a fixed rate. The processor runs as its own process (as deployed), so the producer
 * here does not share its event loop; events are stamped at creation, so send latency counts too.
 * Quantiles come from the processor's histogram on /metrics.
 */
async function freshness(
  store: StoreKind,
): Promise<{ p50: number; p99: number; sent: number; achieved: number }> {
  const { topic, encode } = await makeTopic(`fresh-${store}`);
  const port = await freePort();
  const config = {
    ...processorConfig(topic, store, `bench-fresh-${store}-${stamp}`, flags.features === 1),
    ops: { host: "127.0.0.1", port },
  };
  const configFile = join(dir, "fresh.json");
  writeFileSync(configFile, JSON.stringify(config));
  const child = spawn(
    process.execPath,
    [
      // BENCH_CPU_PROF=<dir> writes a CPU profile of the processor there.
      ...(process.env["BENCH_CPU_PROF"]
        ? ["--cpu-prof", `--cpu-prof-dir=${process.env["BENCH_CPU_PROF"]}`]
        : []),
      "--conditions=@tessera/source",
      "--import",
      "tsx",
      join(repoRoot, "services/stream-processor/src/main.ts"),
      "--config",
      configFile,
    ],
    { stdio: "ignore", env: { ...process.env, TESSERA_LOG_LEVEL: "warn" } },
  );
  const ops = `http://127.0.0.1:${port}`;
  for (;;) {
    const status = await fetch(`${ops}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) break;
    if (child.exitCode !== null) throw new Error(`processor exited with ${child.exitCode}`);
    await sleep(200);
  }
  const producer = kafka.producer();
  await producer.connect();
  const tick = 20; // ms between sends
  const perTick = Math.round((flags.rate * tick) / 1000);
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < flags.seconds * 1000) {
    const now = Date.now();
    const messages = Array.from({ length: perTick }, (_, j) => {
      const e = payment(sent + j, now);
      return { key: e.card_id, value: encode(e) };
    });
    await producer.send({ topic, acks: 1, messages });
    sent += perTick;
    const due = started + (sent / flags.rate) * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  const achieved = sent / ((Date.now() - started) / 1000);
  await producer.disconnect();
  await sleep(2000);
  const text = await (await fetch(`${ops}/metrics`)).text();
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  if (store === "redis") {
    await exited;
    await dropRedisKeys(config.store.keyPrefix);
  }
  // A metric's value, summed over its labelled series (events_in is per topic).
  const figure = (name: string) => {
    const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "gm"))];
    return values.length === 0 ? Number.NaN : values.reduce((sum, m) => sum + Number(m[1]), 0);
  };
  const flushes = figure("tessera_processor_flush_seconds_count");
  console.log(
    `  processor: ${fmt(flushes)} flushes, mean ${fmt((figure("tessera_processor_flush_seconds_sum") / flushes) * 1000, 1)} ms, ` +
      `${fmt(figure("process_cpu_seconds_total"), 1)} CPU s in ${fmt(figure("tessera_processor_events_in_total"))} events`,
  );
  const buckets = [...text.matchAll(/^tessera_processor_freshness_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)]
    .map((m) => ({ le: Number(m[1]), count: Number(m[2]) }))
    .sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1]!.count;
  // Linear interpolation inside the bucket, as Prometheus' histogram_quantile does.
  const q = (p: number) => {
    const rank = p * total;
    let lower = 0;
    let below = 0;
    for (const b of buckets) {
      if (b.count >= rank) {
        if (!Number.isFinite(b.le)) return lower;
        return lower + ((b.le - lower) * (rank - below)) / Math.max(1, b.count - below);
      }
      lower = b.le;
      below = b.count;
    }
    return lower;
  };
  return { p50: q(0.5), p99: q(0.99), sent, achieved };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function quietLogger() {
  if (process.env["BENCH_VERBOSE"]) return createLogger("bench-processor", "debug");
  // biome-ignore lint/suspicious/noExplicitAny: a pino-compatible sink that drops everything
  const noop: any = () => {};
  const logger = {
    info: noop,
    warn: noop,
    error: noop,
    debug: noop,
    fatal: noop,
    trace: noop,
    child: () => logger,
  };
  // biome-ignore lint/suspicious/noExplicitAny: see above
  return logger as any;
}

const { topic, encode } = await makeTopic("rate");
const bytes = await fill(topic, encode, flags.events);
console.log(
  `Stream processor bench: ${fmt(flags.events)} events (${fmt(bytes)} B Avro each), ${flags.entities} entities, ` +
    `${flags.partitions} partitions, ${VIEW === "bench" ? "the bench view (10 features, hops 5 min/1 h)" : "the example view (8 features, hops 30 s/1 m/5 m)"}, ` +
    `event times ${flags.spreadMinutes > 0 ? `spread over the last ${flags.spreadMinutes} min` : `as a live stream at ${fmt(flags.rate)}/s`}.`,
);
interface Row {
  rate: number;
  baseline: number;
  ratio: number;
  cpuMicros: number;
  baselineCpuMicros: number;
  runs: Rate[];
  baselines: Rate[];
}
const rows: Record<string, Row> = {};
const variants: [string, StoreKind, boolean][] = [
  ...(flags.redis
    ? ([
        ["redis", "redis", true],
        ["redis, no FeatureUpdates", "redis", false],
      ] as [string, StoreKind, boolean][])
    : []),
  ...(flags.cassandra ? ([["cassandra", "cassandra", true]] as [string, StoreKind, boolean][]) : []),
];
for (const [label, store, features] of variants) {
  const runs: Rate[] = [];
  const baselines: Rate[] = [];
  for (let run = 0; run < flags.runs; run++) {
    // Baseline and processor back to back, so both see the same machine load.
    baselines.push(await rawConsume(topic, flags.events));
    runs.push(await processorRate(topic, flags.events, store, features));
  }
  const rate = median(runs.map((r) => r.rate));
  const baseline = median(baselines.map((r) => r.rate));
  const cpuMicros = median(runs.map((r) => r.cpuMicros));
  const baselineCpuMicros = median(baselines.map((r) => r.cpuMicros));
  rows[label] = { rate, baseline, ratio: rate / baseline, cpuMicros, baselineCpuMicros, runs, baselines };
  console.log(
    `${label.padEnd(26)} ${fmt(rate).padStart(8)} events/s   raw kafkajs ${fmt(baseline).padStart(8)} msg/s   ratio ${fmt(rate / baseline, 2)}` +
      `   CPU ${fmt(cpuMicros, 1)} µs/event (raw ${fmt(baselineCpuMicros, 1)}) = ${fmt(1e6 / cpuMicros)} events per CPU-second` +
      `   [median of ${flags.runs}: ${runs.map((r) => fmt(r.rate)).join(", ")}]`,
  );
}
const fresh = flags.freshness ? await freshness("redis") : undefined;
if (fresh) {
  console.log(
    `freshness at ${fmt(flags.rate)} events/s (achieved ${fmt(fresh.achieved)}) for ${flags.seconds} s, Redis, processor in its own process${flags.features ? "" : ", no FeatureUpdates"}: ` +
      `p50 ${fmt(fresh.p50 * 1000)} ms, p99 ${fmt(fresh.p99 * 1000)} ms (from its histogram, interpolated)`,
  );
}
// Issue 15's targets. The CPU target is per view: 6 µs on the bench view; 10 µs on the example view
// with event times spread over 30 minutes (a backlog), the case that target was set for.
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const redis = rows["redis"];
if (redis) {
  const cpuTarget = VIEW === "bench" ? 6 : 10;
  const cpuCase = VIEW === "bench" || flags.spreadMinutes >= 30 ? "" : " (set for --spreadMinutes 30)";
  // The throughput target is the bench view's; the example view has only a CPU target.
  const rateVerdict =
    VIEW === "bench" ? `≥ 150,000 events/s: ${verdict(redis.rate >= 150_000)} (${fmt(redis.rate)}); ` : "";
  console.log(
    `target Redis, FeatureUpdates on, ${rateVerdict}≤ ${cpuTarget} µs CPU per event${cpuCase}: ${verdict(redis.cpuMicros <= cpuTarget)} (${fmt(redis.cpuMicros, 1)})`,
  );
}
const cassandra = rows["cassandra"];
if (cassandra) {
  console.log(
    `target Cassandra ≥ 30,000 events/s: ${verdict(cassandra.rate >= 30_000)} (${fmt(cassandra.rate)})`,
  );
}
if (fresh) {
  const limit = flags.rate >= 50_000 ? 2 : 1;
  console.log(
    `target p99 freshness ≤ ${limit} s at ${fmt(flags.rate)} events/s: ${verdict(fresh.p99 <= limit)} (${fmt(fresh.p99 * 1000)} ms)`,
  );
}
console.log(`saved ${saveResult("processor", { flags, bytesPerEvent: bytes, rows, freshness: fresh })}`);
registry.close();
process.exit(0);
