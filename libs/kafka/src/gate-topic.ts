/**
 * The quality gate's compacted topic: key `view:<name>` or `model:<name>`, value a GateState (JSON),
 * a tombstone once released. `GateFollower` reads every partition from the beginning up to the end
 * offsets it found at start (then it is caught up: a new feature server serves the current state
 * from its first request) and keeps following. `GatePublisher` is what writers use — the drift
 * worker (`observe`), the CLI and the feature server's operator API (`ack`, `override`, `release`):
 * each applies the pure state machine of @tessera/transforms to the current state and publishes
 * only changes.
 */
import { randomUUID } from "node:crypto";
import {
  ackGate,
  DEFAULT_GATE_OPTIONS,
  effectiveGate,
  encodeGateState,
  type GateObservation,
  type GateOperatorAction,
  type GateOptions,
  type GateState,
  observeGate,
  overrideGate,
  parseGateState,
  releaseGate,
} from "@tessera/transforms";
import { ensureTopics } from "./admin.js";
import type { Bus, BusConsumer, BusProducer } from "./bus.js";
import { tesseraStateTopics } from "./topics.js";

export const DEFAULT_GATE_TOPIC: string = tesseraStateTopics.gate;

/** One partition: a handful of keys, written rarely; ordered per key by the key partitioner anyway. */
export async function ensureGateTopic(kafka: Bus, topic = DEFAULT_GATE_TOPIC): Promise<void> {
  await ensureTopics(kafka, [{ topic, partitions: 1, cleanupPolicy: "compact", retentionMs: -1 }]);
}

export interface GateFollowerOptions {
  kafka: Bus;
  topic?: string;
  /** Prefix of the follower's private consumer group (never committed, never shared). */
  clientId?: string;
  /** Called for each change seen (state undefined: released). */
  onChange?: (subject: string, state: GateState | undefined) => void;
  /** A record that does not parse is skipped and reported here (a follower never stops on one). */
  onInvalid?: (error: Error, key: string) => void;
}

/**
 * Follows the gate topic into memory. The bus has no group-less consumer, so each follower joins a
 * group of its own (a random id, offsets never committed): every follower reads every partition.
 */
export class GateFollower {
  private readonly states = new Map<string, GateState>();
  private consumer: BusConsumer | undefined;
  private caughtUpFlag = false;
  private resolveCaughtUp: () => void = () => {};
  /** Resolves once every partition has been read up to the end offsets found at start. */
  readonly caughtUp: Promise<void>;
  readonly topic: string;

  constructor(private readonly options: GateFollowerOptions) {
    this.topic = options.topic ?? DEFAULT_GATE_TOPIC;
    this.caughtUp = new Promise((resolve) => {
      this.resolveCaughtUp = resolve;
    });
  }

  get isCaughtUp(): boolean {
    return this.caughtUpFlag;
  }

  /** The stored state of a subject (as last written; see `effective` for what is served now). */
  get(subject: string): GateState | undefined {
    return this.states.get(subject);
  }

  /** Every subject's state as in force at `now` (overrides past their end are acked trips). */
  all(now = Date.now()): GateState[] {
    return [...this.states.values()].map((s) => effectiveGate(s, now));
  }

  /** Applies a state written by this process at once (read-your-writes); the echo is the same value. */
  applyLocal(subject: string, state: GateState | undefined): void {
    if (state) this.states.set(subject, state);
    else this.states.delete(subject);
    this.options.onChange?.(subject, state);
  }

  async start(): Promise<void> {
    const { kafka } = this.options;
    await ensureGateTopic(kafka, this.topic);
    const admin = kafka.admin();
    await admin.connect();
    let ends: Array<{ partition: number; high: string; low: string }>;
    try {
      ends = await admin.fetchTopicOffsets(this.topic);
    } finally {
      await admin.disconnect();
    }
    // The last record of a partition is never compacted away (it sits in the active segment), so
    // reading offset high-1 means everything before the start is in memory.
    const pending = new Map(
      ends.filter((e) => Number(e.high) > Number(e.low)).map((e) => [e.partition, Number(e.high)]),
    );
    const check = () => {
      if (pending.size === 0 && !this.caughtUpFlag) {
        this.caughtUpFlag = true;
        this.resolveCaughtUp();
      }
    };
    check();
    const consumer = kafka.consumer({
      groupId: `${this.options.clientId ?? "tessera-gate"}-${randomUUID()}`,
      // Small and quick: a follower's group has one member and nothing to hand over.
      sessionTimeout: 10_000,
      heartbeatInterval: 3_000,
      // An idle fetch returns after this: bounds how long stop() waits (a write arrives at once anyway).
      maxWaitTimeInMs: 500,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const key = message.key?.toString() ?? "";
        if (message.value === null || message.value.length === 0) {
          this.applyLocal(key, undefined);
        } else {
          try {
            this.applyLocal(key, parseGateState(message.value.toString()));
          } catch (error) {
            this.options.onInvalid?.(error as Error, key);
          }
        }
        const end = pending.get(partition);
        if (end !== undefined && Number(message.offset) + 1 >= end) {
          pending.delete(partition);
          check();
        }
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.consumer = undefined;
  }
}

export interface GatePublisherOptions extends GateFollowerOptions {
  /** Hysteresis and the longest override (DEFAULT_GATE_OPTIONS). */
  gate?: GateOptions;
  /** A follower already running in this process (the feature server's); else the publisher starts one. */
  follower?: GateFollower;
}

/**
 * Writes gate transitions. Read-modify-write per subject on the followed state: concurrent writers
 * of the same subject are last-write-wins (actions are rare and human-paced; the log shows both).
 */
export class GatePublisher {
  private producer: BusProducer | undefined;
  private readonly follower: GateFollower;
  private readonly ownsFollower: boolean;
  private readonly gate: GateOptions;

  constructor(private readonly options: GatePublisherOptions) {
    this.follower = options.follower ?? new GateFollower(options);
    this.ownsFollower = options.follower === undefined;
    this.gate = options.gate ?? DEFAULT_GATE_OPTIONS;
  }

  /** Connects and reads the current states (a writer must know what it changes). */
  async start(): Promise<void> {
    if (this.ownsFollower) await this.follower.start();
    await this.follower.caughtUp;
    this.producer = this.options.kafka.producer({ allowAutoTopicCreation: false });
    await this.producer.connect();
  }

  /** Current states as in force now (or of one subject). */
  status(subject?: string, now = Date.now()): GateState[] {
    const all = this.follower.all(now);
    return subject === undefined ? all : all.filter((s) => s.subject === subject);
  }

  /** A cause seen active or clear (the drift worker, on every evaluation): trips or clears. */
  async observe(subject: string, seen: GateObservation): Promise<GateState | undefined> {
    const prev = this.follower.get(subject);
    const next = observeGate(prev, subject, seen, this.gate);
    if (next !== prev && next) await this.write(subject, next);
    return next;
  }

  async ack(subject: string, action: GateOperatorAction): Promise<GateState> {
    const next = ackGate(this.follower.get(subject), action);
    await this.write(subject, next);
    return next;
  }

  async override(subject: string, action: GateOperatorAction & { forMs: number }): Promise<GateState> {
    const next = overrideGate(this.follower.get(subject), action, this.gate);
    await this.write(subject, next);
    return next;
  }

  /** Writes `ok` (the audit of who released it, seen by followers) and then the tombstone. */
  async release(subject: string, action: GateOperatorAction): Promise<GateState> {
    const next = releaseGate(this.follower.get(subject), action);
    await this.write(subject, next);
    await this.write(subject, undefined);
    return next;
  }

  /** Publishes a state as given (tests, tools): `undefined` writes a tombstone. */
  async write(subject: string, state: GateState | undefined): Promise<void> {
    if (!this.producer) throw new Error("GatePublisher: start() first");
    await this.producer.send({
      topic: this.follower.topic,
      acks: -1,
      messages: [{ key: subject, value: state ? encodeGateState(state) : null }],
    });
    this.follower.applyLocal(subject, state);
  }

  async stop(): Promise<void> {
    await this.producer?.disconnect();
    this.producer = undefined;
    if (this.ownsFollower) await this.follower.stop();
  }
}
