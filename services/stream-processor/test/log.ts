import { createKafka } from "@tessera/kafka";
import type { Payment } from "./fixtures.js";

/**
 * Every record of a topic as it is in the log, decoded, with its offset as the log position: the
 * oracle's input. (What a producer sent is not enough: a send retried across a broker restart may
 * have landed twice, and then the processor must count it twice.)
 */
export async function readLog(
  brokers: string[],
  topic: string,
  decode: (value: Buffer) => Payment,
): Promise<{ row: Payment; seq: number }[]> {
  const kafka = createKafka({ brokers, clientId: "fault-test-reader" });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map(ends.map((e) => [e.partition, Number(e.high)]));
  const total = [...remaining.values()].reduce((a, b) => a + b, 0);
  const out: { row: Payment; seq: number }[] = [];
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: `fault-test-reader-${Date.now()}-${Math.random()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            if (Number(m.offset) < remaining.get(batch.partition)!) {
              out.push({ row: decode(m.value!), seq: Number(m.offset) });
            }
          }
          if (out.length >= total) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}
