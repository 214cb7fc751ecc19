/**
 * Sends a batch as one produce request per partition.
 *
 * KafkaJS 2.2.4 can lose records when a partition's leader moves while a send is retried: the retry
 * skips every broker that already answered for other partitions of the same send, also when that
 * broker is the moved partition's new leader, and the send resolves as if everything was written
 * (tulios/kafkajs#1798; test/integration/three-brokers.test.ts lost ~50 acknowledged records per
 * SIGKILLed leader before this). A send that holds one partition has one leader, before and after a
 * move, so its retry cannot skip it.
 *
 * Keyed records get the partition Kafka's default partitioner gives them (murmur2 of the key, as the
 * Java client and KafkaJS's DefaultPartitioner), records without a key go round-robin, and a record
 * with an explicit partition keeps it.
 */
import type { BusAdmin, BusProducer, OutgoingRecord, SentRecords } from "./bus.js";
import { partitionForKey } from "./partitioner.js";

/** How long a topic's partition count is trusted before it is asked again (partitions can be added). */
const PARTITIONS_MAX_AGE_MS = 30_000;

export class PartitionedSender {
  private readonly partitions = new Map<string, { count: Promise<number>; at: number }>();
  private roundRobin = 0;

  constructor(
    private readonly producer: BusProducer,
    private readonly admin: BusAdmin,
  ) {}

  async send(topic: string, messages: OutgoingRecord[]): Promise<SentRecords[]> {
    if (messages.length === 0) return [];
    const count = await this.partitionCount(topic);
    const byPartition = new Map<number, OutgoingRecord[]>();
    for (const message of messages) {
      const partition =
        message.partition ??
        (message.key === null || message.key === undefined
          ? this.roundRobin++ % count
          : partitionForKey(message.key, count));
      const list = byPartition.get(partition);
      if (list) list.push({ ...message, partition });
      else byPartition.set(partition, [{ ...message, partition }]);
    }
    // Every send settles before the batch does: none is left in flight behind a rejection.
    const results = await Promise.allSettled(
      [...byPartition.values()].map((batch) => this.producer.send({ topic, acks: -1, messages: batch })),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      this.partitions.delete(topic); // the count may have changed: ask again next time
      throw (failed as PromiseRejectedResult).reason;
    }
    return results.flatMap((r) => (r as PromiseFulfilledResult<SentRecords[]>).value);
  }

  private partitionCount(topic: string): Promise<number> {
    const cached = this.partitions.get(topic);
    if (cached && Date.now() - cached.at < PARTITIONS_MAX_AGE_MS) return cached.count;
    const count = this.admin.fetchTopicMetadata({ topics: [topic] }).then(({ topics }) => {
      const n = topics[0]?.partitions.length ?? 0;
      if (n === 0) throw new Error(`topic ${topic} has no partitions in the cluster's metadata`);
      return n;
    });
    this.partitions.set(topic, { count, at: Date.now() });
    count.catch(() => this.partitions.delete(topic));
    return count;
  }
}
