/**
 * A failed flush pauses the source partitions until a flush succeeds. The retry of that batch may not
 * flush at all: the store may answer it with a fence (another replica claimed the partition while
 * this one waited — a thawed replica whose store request timed out meets exactly this), or the group
 * may have moved on. Whatever the retry's outcome short of another failure, the pause must end, or
 * the replica holds its partitions and consumes nothing for good.
 */
import { ensureTopics, MemoryBroker, SchemaRegistry } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { createOnlineStore, type OnlineStore, StoreUnavailableError } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
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

const SESSION_MS = 500;

describe("a flush that failed, then was fenced", () => {
  it("resumes consuming: a later claim replays and stores every event", { timeout: 30_000 }, async () => {
    const topic = "payments-pause";
    const kafka = new MemoryBroker().client();
    await ensureTopics(kafka, [
      { topic, partitions: 1 },
      { topic: `${topic}.dead-letter`, partitions: 1 },
    ]);
    const registry = SchemaRegistry.inMemory();
    const { encode } = await paymentCodec(registry, topic);

    const yaml = definitionsYaml(topic, "cards");
    const inner = createOnlineStore({ kind: "memory" });
    const groupId = "tessera-processor-pause";
    let injected = 0;
    // The first flush times out, and meanwhile another replica claims the partition: the retry is fenced.
    const store: OnlineStore = Object.assign(Object.create(inner) as OnlineStore, {
      writeBatch: async (batch: Parameters<OnlineStore["writeBatch"]>[0]) => {
        if (injected++ === 0) {
          await inner.claimPartition(groupId, topic, 0);
          throw new StoreUnavailableError("memory", "injected: the flush timed out");
        }
        return inner.writeBatch(batch);
      },
    });

    const processor = await startProcessor(
      loadProcessorConfig({
        env: {},
        overrides: {
          name: "pause",
          definitions: "unused.yaml",
          store: { kind: "memory" },
          kafka: { sessionTimeoutMs: SESSION_MS, heartbeatIntervalMs: 100 },
          flush: { maxEvents: 200, maxDelayMs: 50 },
          fromBeginning: true,
          publishFeatures: false,
          topics: { deadLetter: `${topic}.dead-letter` },
        },
      }),
      {
        kafka,
        registry,
        store,
        definitions: parseDefinitionsYaml(yaml),
        logger: createLogger("stream-processor", "silent"),
        ops: false,
      },
    );
    try {
      const events = payments(2000, { entities: 50, seed: 3, endMs: Date.now(), spanMs: 10 * 60_000 });
      const producer = kafka.producer();
      await producer.connect();
      const send = (chunk: Payment[]) =>
        producer.send({ topic, messages: chunk.map((p) => ({ key: p.card_id, value: encode(p) })) });
      await send(events.slice(0, 1000));
      await waitFor("the injected failure", async () => (injected >= 2 ? true : undefined), 10_000);
      // Past the fence's hold-off, more events arrive: the processor claims again and replays from the store.
      await new Promise((r) => setTimeout(r, SESSION_MS * 2));
      await send(events.slice(1000));
      await producer.disconnect();
      const stored = async () => (await inner.readOffsets(groupId, topic)).get(0);
      await waitFor(
        "every event stored",
        async () => ((await stored()) === events.length - 1 ? true : undefined),
        10_000,
      );
      // Replayed after the fence, counted once: the stored values equal the batch evaluator's.
      const t = Date.now();
      const batch = batchValues(
        viewOf(yaml),
        events.map((row, seq) => ({ row, seq })),
        t,
      );
      const online = await onlineValues(inner, viewOf(yaml), [...batch.keys()], t);
      expect(differences(online, batch).slice(0, 3)).toEqual([]);
    } finally {
      await processor.stop();
    }
  });
});
