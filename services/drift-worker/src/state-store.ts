/**
 * The worker's state on a compacted Kafka topic of its own: one JSON record per piece (an open
 * incident, a subject's windows, a model's accuracy window …), keyed by
 * JSON [groupId, part, id] so workers of different scopes share the topic without colliding.
 * A save writes only the records that changed, and a tombstone for each that went away (a
 * resolved incident); compaction keeps the latest of each key. At start the topic is read to its
 * end (the high-water marks are fetched first) by a throwaway consumer that never commits, so
 * nothing can be skipped.
 */
import { randomUUID } from "node:crypto";
import { type Bus, type BusProducer, ensureTopics, type OutgoingRecord } from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";

/** part → id → value: what the worker saves and gets back. */
export type StateSnapshot = Map<string, Map<string, unknown>>;

export interface StateStoreOptions {
  kafka: Bus;
  topic: string;
  /** The worker's consumer group: it names the worker's records on the topic. */
  groupId: string;
  logger?: Logger;
  /** Give up reading the topic back after this long (the start then fails). */
  loadTimeoutMs?: number;
}

/** Records per send are capped in bytes: a batch must stay below the topic's max.message.bytes. */
const BATCH_BYTES = 512 * 1024;
/** Written last in every save: the newest record of the topic is never a tombstone. */
const META = ["meta", "saved"] as const;

export class KafkaStateStore {
  private producer?: BusProducer;
  /** key → the value last written (JSON), to write only what changed. */
  private readonly written = new Map<string, string>();

  constructor(private readonly options: StateStoreOptions) {}

  private key(part: string, id: string): string {
    return JSON.stringify([this.options.groupId, part, id]);
  }

  /** Creates the topic (compacted, one partition: records stay in write order) if it is missing. */
  async connect(): Promise<void> {
    await ensureTopics(this.options.kafka, [
      { topic: this.options.topic, partitions: 1, cleanupPolicy: "compact" },
    ]);
    this.producer = this.options.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
  }

  /** This worker's records, read to the end of the topic. */
  async load(): Promise<{ snapshot: StateSnapshot; records: number }> {
    const { kafka, topic, groupId } = this.options;
    const admin = kafka.admin();
    await admin.connect();
    const latest = new Map<string, { part: string; id: string; value: unknown }>();
    const readerGroup = `${groupId}.state-reader.${randomUUID()}`;
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      // The last offset to read per partition; partitions with nothing in them are done already.
      const remaining = new Map(
        offsets.filter((p) => Number(p.high) > Number(p.low)).map((p) => [p.partition, Number(p.high) - 1]),
      );
      if (remaining.size > 0) {
        const consumer = kafka.consumer({ groupId: readerGroup });
        try {
          await consumer.connect();
          await consumer.subscribe({ topics: [topic], fromBeginning: true });
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`state topic ${topic}: not read to its end within the timeout`)),
              this.options.loadTimeoutMs ?? 60_000,
            );
            consumer
              .run({
                autoCommit: false,
                eachBatch: async ({ batch }) => {
                  for (const message of batch.messages) this.apply(latest, message.key, message.value);
                  const last = remaining.get(batch.partition);
                  if (last !== undefined && Number(batch.lastOffset()) >= last)
                    remaining.delete(batch.partition);
                  if (remaining.size === 0) {
                    clearTimeout(timer);
                    resolve();
                  }
                },
              })
              .catch(reject);
          });
        } finally {
          await consumer.disconnect().catch(() => {});
          // The group is only tidied away: a failure here loses nothing.
          await admin.deleteGroups([readerGroup]).catch(() => {});
        }
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
    const snapshot: StateSnapshot = new Map();
    for (const [key, { part, id, value }] of latest) {
      this.written.set(key, JSON.stringify(value));
      if (part === META[0]) continue;
      const records = snapshot.get(part) ?? new Map<string, unknown>();
      records.set(id, value);
      snapshot.set(part, records);
    }
    return { snapshot, records: latest.size };
  }

  private apply(
    latest: Map<string, { part: string; id: string; value: unknown }>,
    rawKey: Buffer | null,
    value: Buffer | null,
  ): void {
    if (!rawKey) return;
    const key = rawKey.toString();
    let parsed: unknown;
    try {
      parsed = JSON.parse(key);
    } catch {
      return; // not a record of ours
    }
    if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== this.options.groupId) return;
    if (value === null) {
      latest.delete(key);
      return;
    }
    try {
      latest.set(key, {
        part: String(parsed[1]),
        id: String(parsed[2]),
        value: JSON.parse(value.toString()),
      });
    } catch (error) {
      this.options.logger?.warn({ key, err: error }, "state record is not JSON: ignored");
    }
  }

  /**
   * Writes what differs from the last save; resolves once Kafka has it. On failure nothing is
   * marked written, so the next save tries the same records again.
   */
  async save(snapshot: StateSnapshot, now = Date.now()): Promise<number> {
    if (!this.producer) throw new Error("state store: connect() first");
    const next = new Map<string, string>();
    for (const [part, records] of snapshot)
      for (const [id, value] of records) next.set(this.key(part, id), JSON.stringify(value));
    const changes: Array<{ key: string; value: string | null }> = [];
    for (const [key, value] of next) if (this.written.get(key) !== value) changes.push({ key, value });
    const meta = this.key(...META);
    for (const key of this.written.keys())
      if (key !== meta && !next.has(key)) changes.push({ key, value: null });
    if (changes.length === 0) return 0;
    changes.push({ key: meta, value: JSON.stringify({ at: now }) });
    let batch: OutgoingRecord[] = [];
    let bytes = 0;
    const send = async () => {
      await this.producer!.send({
        topic: this.options.topic,
        messages: batch,
        acks: -1,
        compression: "gzip",
      });
      batch = [];
      bytes = 0;
    };
    for (const change of changes) {
      const size = change.key.length + (change.value?.length ?? 0);
      if (batch.length > 0 && bytes + size > BATCH_BYTES) await send();
      batch.push({ key: change.key, value: change.value });
      bytes += size;
    }
    await send();
    for (const { key, value } of changes) {
      if (value === null) this.written.delete(key);
      else this.written.set(key, value);
    }
    return changes.length;
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
  }
}
