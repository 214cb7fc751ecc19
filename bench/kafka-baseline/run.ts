/**
 * Raw KafkaJS produce and consume rates against the local broker, for 100 B and 1 KB messages.
 * Later benchmarks divide their end-to-end rates by these.
 *
 *   npm run stack:up && npm run bench:kafka -- [--runs 5] [--messages 200000]
 */
import { randomBytes } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { fmt, loadStackEnv, median, numericFlags, requireEnv, saveResult } from "../support/index.js";

loadStackEnv();
const brokers = requireEnv("KAFKA_BROKERS").split(",");
const { runs, messages } = numericFlags({ runs: 5, messages: 200_000 });
const kafka = new Kafka({ clientId: "bench-kafka-baseline", brokers, logLevel: logLevel.ERROR });
const batchSize = 1000;

interface RunFigures {
  produceMsgPerSec: number;
  consumeMsgPerSec: number;
}

async function oneRun(size: number, run: number): Promise<RunFigures> {
  const topic = `bench-baseline-${size}-${Date.now()}-${run}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

  const value = randomBytes(size);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const batch = Array.from({ length: batchSize }, (_, i) => ({ key: String(i), value }));
  const produceStart = performance.now();
  // Two sends in flight keep the pipe full without unbounded memory.
  const inFlight: Promise<unknown>[] = [];
  for (let sent = 0; sent < messages; sent += batchSize) {
    inFlight.push(producer.send({ topic, acks: -1, messages: batch }));
    if (inFlight.length >= 2) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const produceSeconds = (performance.now() - produceStart) / 1000;
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-group`, maxBytes: 64 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let received = 0;
  let firstAt = 0;
  const consumeSeconds = await new Promise<number>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch: b }) => {
        if (firstAt === 0) firstAt = performance.now();
        received += b.messages.length;
        if (received >= messages) resolve((performance.now() - firstAt) / 1000);
      },
    });
  });
  await consumer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  return { produceMsgPerSec: messages / produceSeconds, consumeMsgPerSec: messages / consumeSeconds };
}

const results: Record<string, unknown> = {};
console.log(`Kafka baseline: ${brokers.join(",")}, ${fmt(messages)} messages per run, ${runs} runs, kafkajs`);
for (const size of [100, 1024]) {
  const figures: RunFigures[] = [];
  for (let run = 0; run < runs; run++) figures.push(await oneRun(size, run));
  const produce = median(figures.map((f) => f.produceMsgPerSec));
  const consume = median(figures.map((f) => f.consumeMsgPerSec));
  const mb = (rate: number) => (rate * size) / 1e6;
  console.log(
    `${String(size).padStart(5)} B  produce ${fmt(produce).padStart(9)} msg/s (${fmt(mb(produce), 1)} MB/s)` +
      `   consume ${fmt(consume).padStart(9)} msg/s (${fmt(mb(consume), 1)} MB/s)   [median of ${runs}]`,
  );
  results[`${size}B`] = {
    produceMsgPerSec: produce,
    produceMBPerSec: mb(produce),
    consumeMsgPerSec: consume,
    consumeMBPerSec: mb(consume),
    runs: figures,
  };
}
console.log(`figures saved to ${saveResult("kafka-baseline", results)}`);
