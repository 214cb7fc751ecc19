/**
 * The second half of the path: dead letters first (a crash after them replays the records, so none
 * is lost), then every changed entity's state and the partition's offset in one fenced store write,
 * then FeatureUpdates (in the background, still after the write), then the Kafka commit. Each step
 * keeps its input until it succeeds, so a retried batch (same records, now skipped) finishes it.
 */
import { type BusConsumer, type BusProducer, type DeadLetterPublisher, isRetriable } from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import type { OnlineStore, StateWrite } from "@tessera/stores";
import { type FeatureValue, finalizeStored, TileReader } from "@tessera/transforms";
import { avroFeatureValue, type FeatureUpdateEncoder } from "./codec.js";
import type { ProcessorMetrics } from "./metrics.js";
import type { PartitionState } from "./partition.js";
import type { FlushTracing } from "./tracing.js";

/** A dead-letter or FeatureUpdate publish failed: retried with backoff like any broker outage. */
export class PublishError extends Error {
  override name = "PublishError";
  readonly retriable = true;
  constructor(what: string, cause: unknown) {
    super(`publishing ${what} failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

/**
 * The leading records of at most ~256 kB (at least one): a produce request must stay under the
 * broker's message.max.bytes (1 MB by default), which bounds a partition's record batch.
 */
function leadingChunk<T extends { key?: string | Buffer | null; value?: Buffer | null }>(records: T[]): T[] {
  let bytes = 0;
  let n = 0;
  while (n < records.length && (n === 0 || bytes < 256 * 1024)) {
    bytes += (records[n]!.key?.length ?? 0) + (records[n]!.value?.length ?? 0);
    n++;
  }
  return records.slice(0, n);
}

type Message = { key: string; value: Buffer; headers?: Record<string, string | Buffer> };

/**
 * FeatureUpdates go out in the background, in flush order, one produce request at a time, so the
 * next flush does not wait for the broker. A failed send keeps its messages and is reported to the
 * next flush, which then fails (and is retried) like any broker outage; past `maxBacklog` queued
 * messages a flush waits for the queue to drain.
 */
export class UpdatePublisher {
  private queue: Message[] = [];
  private sending: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly producer: BusProducer,
    private readonly topic: string,
    private readonly maxBacklog = 100_000,
  ) {}

  enqueue(messages: Message[]): void {
    for (const m of messages) this.queue.push(m);
    this.sending ??= this.pump().finally(() => {
      this.sending = undefined;
    });
  }

  /** Throws the last send failure (once), and waits while the backlog is too long. */
  async check(): Promise<void> {
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      this.enqueue([]); // try the kept messages again in the background
      throw new PublishError("FeatureUpdates", failure);
    }
    if (this.queue.length > this.maxBacklog) await this.drain();
  }

  /** Resolves once everything queued is sent, or rejects with the send failure. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.sending) {
      if (!this.sending) this.enqueue([]);
      await this.sending;
      if (this.failure !== undefined) return this.check();
    }
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      const chunk = leadingChunk(this.queue);
      try {
        await this.producer.send({ topic: this.topic, acks: -1, messages: chunk });
      } catch (error) {
        this.failure = error;
        return;
      }
      this.queue = this.queue.slice(chunk.length);
    }
  }
}

export interface FlushOptions {
  tracing: FlushTracing;
  store: OnlineStore;
  consumer: BusConsumer;
  deadLetters: DeadLetterPublisher;
  /** Absent when FeatureUpdates are off. */
  updates?: { publisher: UpdatePublisher; encoder: FeatureUpdateEncoder };
  metrics: ProcessorMetrics;
  logger: Logger;
}

export class Flusher {
  constructor(private readonly options: FlushOptions) {}

  /**
   * Writes what the partition owes. Throws StoreFencedError when the store says it lost ownership.
   * `commit: false` skips the Kafka commit (after the consumer left the group).
   */
  async flush(part: PartitionState, { commit = true }: { commit?: boolean } = {}): Promise<void> {
    if (part.idle) return;
    const { store, metrics, deadLetters, updates } = this.options;
    const started = performance.now();
    part.takeWrites();
    // A span per flush, linked to the sampled trace contexts of its records; FeatureUpdates carry it.
    const traced = this.options.tracing.begin(part);
    part.unflushedEvents = 0;
    part.lastFlush = Date.now();
    let stage = "dead_letter";
    try {
      while (part.deadLetters.length > 0) {
        const chunk = leadingChunk(part.deadLetters);
        await deadLetters.publish(chunk);
        part.deadLetters = part.deadLetters.slice(chunk.length);
      }
      stage = "features";
      await updates?.publisher.check();
      stage = "store";
      if (part.applied > part.stored || part.writes.length > 0) {
        await store.writeBatch({
          owner: part.owner,
          expectedOffset: part.stored,
          offset: part.applied,
          states: part.writes,
        });
        const written = Date.now();
        for (const ts of part.eventTimes) metrics.freshness.observe(Math.max(0, written - ts) / 1000);
        part.eventTimes = [];
        const states = part.writes;
        part.writes = [];
        part.stored = part.applied;
        if (updates) updates.publisher.enqueue(traced.headers(this.featureUpdates(part, states, written)));
      }
      if (commit) this.commit(part);
      traced.end();
    } catch (error) {
      traced.end(error);
      metrics.flushErrors.inc({ stage });
      // kafkajs gives up on an unreachable broker with a non-retriable error; for a service that must
      // outlive a broker restart, any failure to publish is one more retry (paused, not ready).
      if (stage === "dead_letter" && !isRetriable(error)) throw new PublishError("dead letters", error);
      throw error;
    }
    metrics.flushSeconds.observe((performance.now() - started) / 1000);
  }

  /**
   * One FeatureUpdate per entity just written, finalised at t from the bytes written: the window
   * vector each carries when t is within its window boundaries (the usual case: the flush began
   * moments ago), else its tiles.
   */
  private featureUpdates(part: PartitionState, states: readonly StateWrite[], t: number): Message[] {
    const encoder = this.options.updates!.encoder;
    const out: Message[] = [];
    const finalized: FeatureValue[] = [];
    const readers = new Map(
      part.views.map((state) => [state.runtime.view.name, new TileReader(state.runtime.layout)]),
    );
    for (const write of states) {
      const reader = readers.get(write.view)!.load(write.state);
      finalizeStored(reader, t, finalized);
      const { features } = reader.layout.view;
      const values: Record<string, ReturnType<typeof avroFeatureValue>> = {};
      for (let f = 0; f < features.length; f++) values[features[f]!.name] = avroFeatureValue(finalized[f]!);
      out.push({
        key: write.entity,
        value: encoder.encode({
          view: write.view,
          version: write.version,
          entity: write.entity,
          event_time: reader.newest,
          computed_at: t,
          values,
        }),
      });
    }
    return out;
  }

  /**
   * The store's offset is what counts; the Kafka commit only saves re-reading after a restart, so
   * it runs in the background (one at a time per partition) and never holds up the next flush.
   */
  private commit(part: PartitionState): void {
    if (part.committing) return;
    const { consumer, metrics, logger } = this.options;
    part.committing = true;
    consumer
      .commitOffsets([{ topic: part.topic, partition: part.partition, offset: String(part.stored + 1) }])
      .catch((error) => {
        metrics.flushErrors.inc({ stage: "commit" });
        logger.warn({ err: error, topic: part.topic, partition: part.partition }, "offset commit failed");
      })
      .finally(() => {
        part.committing = false;
      });
  }
}
