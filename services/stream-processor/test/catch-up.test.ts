/**
 * Flush cadence while far behind: a backlog is flushed by changed entities (or catchUpMaxDelayMs),
 * not after every batch and every `maxEvents` records, so an entity that takes many events is
 * written once per flush. The values stay exactly the batch evaluator's, and a stop in the middle of
 * a backlog writes what the partitions hold instead of dropping it.
 */
import { ensureTopics, MemoryBroker, SchemaRegistry } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { createOnlineStore, type OnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { loadProcessorConfig, startProcessor } from "../src/index.js";
import {
  batchValues,
  definitionsYaml,
  differences,
  onlineValues,
  type Payment,
  paymentCodec,
  payments,
  viewOf,
  waitFor,
} from "./fixtures.js";

const ENTITIES = 200;

/** A topic with `events` already in it (before the processor starts), cards spread over `partitions`. */
async function backlog(topic: string, count: number, partitions: number, entities = ENTITIES) {
  const kafka = new MemoryBroker().client();
  await ensureTopics(kafka, [
    { topic, partitions },
    { topic: `${topic}.dead-letter`, partitions: 1 },
  ]);
  const registry = SchemaRegistry.inMemory();
  const { encode } = await paymentCodec(registry, topic);
  const events = payments(count, { entities, seed: 11, endMs: Date.now(), spanMs: 30 * 60_000 });
  const partitionOf = (p: Payment) => Number(p.card_id.slice("card-".length)) % partitions;
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: events.map((p) => ({ key: p.card_id, value: encode(p), partition: partitionOf(p) })),
  });
  await producer.disconnect();
  // The batch evaluator's seq is each event's offset in its partition.
  const next = Array.from({ length: partitions }, () => 0);
  const logged = events.map((row) => ({ row, partition: partitionOf(row), seq: next[partitionOf(row)]!++ }));
  return { kafka, registry, logged };
}

/** A memory store that counts the entity states each flush writes. */
function countingStore() {
  const inner = createOnlineStore({ kind: "memory" });
  const writes: number[] = [];
  const store: OnlineStore = Object.assign(Object.create(inner) as OnlineStore, {
    writeBatch: (batch: Parameters<OnlineStore["writeBatch"]>[0]) => {
      writes.push(batch.states.length);
      return inner.writeBatch(batch);
    },
  });
  return { inner, store, writes };
}

async function start(
  name: string,
  topic: string,
  deps: { kafka: ReturnType<MemoryBroker["client"]>; registry: SchemaRegistry; store: OnlineStore },
  flush: Record<string, number>,
  extra: Record<string, unknown> = {},
  metricsRegistry = new Registry(),
) {
  const processor = await startProcessor(
    loadProcessorConfig({
      env: {},
      overrides: {
        name,
        definitions: "unused.yaml",
        store: { kind: "memory" },
        flush,
        fromBeginning: true,
        publishFeatures: false,
        topics: { deadLetter: `${topic}.dead-letter` },
        ...extra,
      },
    }),
    {
      ...deps,
      definitions: parseDefinitionsYaml(definitionsYaml(topic, "cards")),
      logger: createLogger("stream-processor", "silent"),
      ops: false,
      metricsRegistry,
    },
  );
  return { processor, groupId: `tessera-processor-${name}` };
}

async function expectBatchValues(inner: OnlineStore, topic: string, logged: { row: Payment; seq: number }[]) {
  const view = viewOf(definitionsYaml(topic, "cards"));
  const t = Date.now();
  const batch = batchValues(view, logged, t);
  const online = await onlineValues(inner, view, [...batch.keys()], t);
  expect(online.size).toBe(batch.size);
  expect(differences(online, batch).slice(0, 3)).toEqual([]);
}

describe("flushing while catching up", () => {
  const EVENTS = 20_000;
  // Batches of the memory broker hold 5,000 records; a flush may hold 1,000 records.
  const flush = { maxEvents: 1000, maxDelayMs: 50, catchUpMaxDelayMs: 60_000 };

  /** The flush sizes (states per write) of a processor over a 1-partition backlog of `cards` cards. */
  async function run(name: string, settings: Record<string, number>, cards = ENTITIES) {
    const topic = `payments-${name}`;
    const { kafka, registry, logged } = await backlog(topic, EVENTS, 1, cards);
    const { inner, store, writes } = countingStore();
    const { processor, groupId } = await start(
      name,
      topic,
      { kafka, registry, store },
      { ...flush, ...settings },
    );
    try {
      await waitFor(
        "every event stored",
        async () => ((await inner.readOffsets(groupId, topic)).get(0) === EVENTS - 1 ? true : undefined),
        20_000,
      );
      await expectBatchValues(inner, topic, logged);
      return writes;
    } finally {
      await processor.stop();
    }
  }

  it("writes each entity about once for the whole backlog, with the batch evaluator's values", async () => {
    const writes = await run("catch-up", { catchUpLag: 2000 });
    // 200 cards never reach the 1,000 changed entities a flush may hold: the records up to
    // catchUpLag (2,000) of the end are flushed once, and the rest every 1,000.
    const states = writes.reduce((n, w) => n + w, 0);
    expect(writes.length).toBeLessThanOrEqual(5);
    expect(states).toBeLessThanOrEqual(5 * ENTITIES);
  });

  it("without catch-up flushing (catchUpLag beyond the backlog), flushes every 1,000 records", async () => {
    const writes = await run("no-catch-up", { catchUpLag: EVENTS });
    const states = writes.reduce((n, w) => n + w, 0);
    expect(writes.length).toBeGreaterThanOrEqual(EVENTS / 1000);
    expect(states).toBeGreaterThan(10 * ENTITIES);
  });

  it("flushes once the changed entities reach what a flush may hold", async () => {
    // A flush may hold 50 records (maxEvents): 200 cards exceed it within each slice.
    const writes = await run("catch-up-bound", { maxEvents: 50, catchUpLag: 2000 });
    // Each catch-up flush came due with 44–50 changed entities (less than an eighth of the room
    // left), never more.
    expect(writes.length).toBeGreaterThan(10);
    expect(Math.max(...writes)).toBeLessThanOrEqual(50);
  });

  it("flushes before slices shrink: active entities that nearly fill a flush", async () => {
    // A flush may hold 200: with 190 cards and without the eighth of room, slices fall to ~10 records.
    const writes = await run("catch-up-nearly-full", { maxEvents: 200, catchUpLag: 0 }, 190);
    expect(writes.length).toBeGreaterThan(10);
    expect(Math.max(...writes)).toBeLessThanOrEqual(200);
  });
});

describe("a stop in the middle of a backlog", () => {
  it("writes what every partition holds: the stored offsets cover every applied event", async () => {
    const topic = "payments-catch-up-stop";
    const EVENTS = 40_000;
    const CARDS = 20_000; // new cards in every slice: each loads its entities from the store
    const { kafka, registry, logged } = await backlog(topic, EVENTS, 2, CARDS);
    const inner = createOnlineStore({ kind: "memory" });
    // One partition at a time is processed; the stop comes when partition 1 loads entities again
    // after partition 0 did in between: partition 0 then holds applied records it did not flush yet.
    const loads: number[] = [];
    let holding!: () => void;
    const stopNow = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const store: OnlineStore = Object.assign(Object.create(inner) as OnlineStore, {
      readStates: (...args: Parameters<OnlineStore["readStates"]>) => {
        const partition = Number(args[2][0]!.slice("card-".length)) % 2;
        if (loads.at(-1) !== partition) loads.push(partition);
        if (loads.join("").includes("0101")) holding();
        return inner.readStates(...args);
      },
    });
    const metricsRegistry = new Registry();
    const { processor, groupId } = await start(
      "catch-up-stop",
      topic,
      { kafka, registry, store },
      { maxEvents: 1000, maxDelayMs: 50, catchUpLag: 5000, catchUpMaxDelayMs: 60_000 },
      { concurrency: 1 },
      metricsRegistry,
    );
    let stopped = false;
    try {
      await stopNow;
      await processor.stop();
      stopped = true;
      const metric = await metricsRegistry.getSingleMetric("tessera_processor_events_applied_total")?.get();
      const applied = (metric?.values ?? []).reduce((n, v) => n + v.value, 0);
      const offsets = await inner.readOffsets(groupId, topic);
      const stored = (offsets.get(0) ?? -1) + 1 + (offsets.get(1) ?? -1) + 1;
      expect(applied).toBeLessThan(EVENTS); // stopped mid-backlog
      expect(stored).toBe(applied);
      await expectBatchValues(
        inner,
        topic,
        logged.filter((e) => e.seq <= offsets.get(e.partition)!),
      );
    } finally {
      if (!stopped) await processor.stop();
    }
  });
});
