/**
 * A consumer group member that keeps going: retriable errors are retried with exponential backoff
 * (the batch is handed over again, never skipped); a fatal error stops the loop and surfaces through
 * `done`; SIGTERM/SIGINT finish the batch in hand, then leave the group cleanly.
 */

import type { Registry } from "prom-client";
import type { BatchPayload, Bus, BusBatch, BusConsumer, ConsumerSettings } from "./bus.js";
import { isRetriable } from "./errors.js";
import { kafkaMetrics } from "./metrics.js";

export interface RetryPolicy {
  retries: number;
  initialMs: number;
  maxMs: number;
}

export interface BatchContext {
  heartbeat(): Promise<void>;
  /** False once a stop was requested: long handlers should wrap up. */
  isRunning(): boolean;
  /** Mark offsets as processed; by default the whole batch is resolved after the handler returns. */
  resolveOffset(offset: string): void;
  payload: BatchPayload;
}

export interface ConsumerLoopOptions {
  kafka: Bus;
  groupId: string;
  topics: string[];
  fromBeginning?: boolean;
  handleBatch(batch: BusBatch, context: BatchContext): Promise<void>;
  retry?: Partial<RetryPolicy>;
  /** Stop on SIGTERM and SIGINT (default true). Services want this; tests usually don't. */
  handleSignals?: boolean;
  /** Called for every error, retried or not (logging). */
  onError?(error: unknown, info: { attempt: number; willRetry: boolean }): void;
  consumerConfig?: Omit<ConsumerSettings, "groupId">;
  /** Leave false to commit only what your handler resolved and committed (exactly-once-effect services). */
  autoCommit?: boolean;
  /** Partitions whose batches are handled at the same time (kafkajs default 1). */
  partitionsConsumedConcurrently?: number;
  metricsRegistry?: Registry;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    // The listener goes when the timer fires: a long run of retries must not pile them up.
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

export class ConsumerLoop {
  readonly consumer: BusConsumer;
  /** Settles when the loop has stopped: resolves after stop(), rejects with the fatal error. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: unknown) => void;
  private readonly stopping = new AbortController();
  private readonly retry: RetryPolicy;
  private readonly metrics;
  private readonly onSignal = () => void this.stop();

  constructor(private readonly options: ConsumerLoopOptions) {
    this.retry = { retries: 8, initialMs: 200, maxMs: 10_000, ...options.retry };
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 30_000,
      heartbeatInterval: 3000,
      ...options.consumerConfig,
    });
    this.metrics = kafkaMetrics(options.metricsRegistry);
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // `done` is for whoever wants it; an unobserved fatal error must not crash the process.
    this.done.catch(() => {});
    // The client restarts its consumer after a retriable crash. After any other it consumes nothing
    // more while the process lives on (a coordinator that cannot be found after a broker dies, say):
    // that is fatal, surfaced through `done` like a handler's fatal error, so the owner can exit and
    // be restarted instead of idling with its partitions assigned.
    this.consumer.onCrash((error, restart) => {
      if (restart || this.stopping.signal.aborted) return;
      this.fail(error);
    });
  }

  /**
   * Stops on a fatal error of the owner's: `done` rejects with it at once, and the consumer leaves
   * the group in the background. `done` does not wait for that: after a broker died, leaving can
   * hang on the lost coordinator, and an owner waiting for it would idle instead of exiting.
   */
  fail(error: unknown): void {
    this.rejectDone(error);
    // stop() settles like `done` (rejected here): observed through `done`, not as an unhandled rejection.
    setImmediate(() => void this.stop().catch(() => {}));
  }

  async start(): Promise<void> {
    if (this.options.handleSignals ?? true) {
      process.once("SIGTERM", this.onSignal);
      process.once("SIGINT", this.onSignal);
    }
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: this.options.topics,
      fromBeginning: this.options.fromBeginning ?? false,
    });
    await this.consumer.run({
      autoCommit: this.options.autoCommit ?? true,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 1,
      eachBatch: (payload) => this.runBatch(payload),
    });
  }

  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return this.done;
    this.stopping.abort();
    process.off("SIGTERM", this.onSignal);
    process.off("SIGINT", this.onSignal);
    try {
      // disconnect() waits for the batch in hand to finish before leaving the group.
      await this.consumer.disconnect();
      this.resolveDone();
    } catch (error) {
      this.rejectDone(error);
    }
    return this.done;
  }

  private async runBatch(payload: BatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length === 0) return;
    this.metrics.consumed.inc({ topic: batch.topic }, batch.messages.length);
    const context: BatchContext = {
      heartbeat: payload.heartbeat,
      isRunning: () => payload.isRunning() && !this.stopping.signal.aborted,
      resolveOffset: payload.resolveOffset,
      payload,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.handleBatch(batch, context);
        // A handler that sought elsewhere (isStale) has not consumed this batch: leave it unresolved.
        if (!payload.isStale()) payload.resolveOffset(batch.lastOffset());
        if (this.options.autoCommit ?? true) await payload.commitOffsetsIfNecessary();
        return;
      } catch (error) {
        const willRetry =
          isRetriable(error) && attempt <= this.retry.retries && !this.stopping.signal.aborted;
        this.options.onError?.(error, { attempt, willRetry });
        if (!willRetry) {
          // Fatal: fetch nothing more, leave this batch unresolved (so uncommitted), and stop from
          // outside the handler (disconnect waits for it). The owner decides through `done`.
          this.consumer.pause(this.options.topics.map((topic) => ({ topic })));
          this.fail(error);
          return;
        }
        this.metrics.handlerRetries.inc({ group: this.options.groupId });
        const backoff = Math.min(this.retry.maxMs, this.retry.initialMs * 2 ** (attempt - 1));
        await sleep(backoff * (0.8 + Math.random() * 0.4), this.stopping.signal);
        await payload.heartbeat().catch(() => {});
      }
    }
  }
}
