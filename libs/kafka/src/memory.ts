/**
 * An in-process stand-in for the part of KafkaJS that Tessera uses: topics with partitions and
 * offsets, keyed partitioning identical to Kafka's (murmur2), consumer groups with committed offsets,
 * eachBatch delivery with resolveOffset, pause/resume/seek, and the admin calls ensureTopics needs.
 *
 * It backs the embedded demo and unit tests; test/integration/bus-contract.test.ts runs the same
 * contract against it and a real broker. It is not a broker: one process, no durability, no
 * transactions, no rebalance protocol beyond "partitions are dealt round-robin to group members".
 */
import { EventEmitter } from "node:events";
import type { Kafka } from "kafkajs";

interface StoredMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string | undefined>;
  timestamp: string;
  offset: string;
  attributes: number;
}

interface MemoryTopic {
  partitions: StoredMessage[][];
  configs: Map<string, string>;
}

/** Kafka's murmur2 (as in the Java client's and KafkaJS's default partitioners). */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ data.length;
  const whole = data.length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = data.length & 3;
  if (rest === 3) h ^= data[whole + 2]! << 16;
  if (rest >= 2) h ^= data[whole + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ data[whole]!, m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

export const partitionForKey = (key: Buffer | string, partitions: number) =>
  (murmur2(Buffer.isBuffer(key) ? key : Buffer.from(key)) & 0x7fffffff) % partitions;

class UnknownTopicOrPartition extends Error {
  override name = "KafkaJSProtocolError";
  readonly type = "UNKNOWN_TOPIC_OR_PARTITION";
  readonly retriable = true;
  constructor(topic: string) {
    super(`This server does not host this topic-partition (${topic})`);
  }
}

class MemoryGroup {
  readonly committed = new Map<string, string>();
  readonly members: MemoryConsumer[] = [];

  constructor(private readonly broker: MemoryBroker) {}

  rebalance(): void {
    const members = [...this.members].sort((a, b) => a.memberId.localeCompare(b.memberId));
    for (const member of members) member.assignment.clear();
    const partitions = [...new Set(members.flatMap((m) => m.topics))]
      .sort()
      .flatMap((topic) => this.broker.partitionsOf(topic).map((p) => ({ topic, partition: p })));
    let next = 0;
    for (const tp of partitions) {
      const candidates = members.filter((m) => m.topics.includes(tp.topic));
      if (candidates.length === 0) continue;
      candidates[next++ % candidates.length]!.assign(tp.topic, tp.partition);
    }
    for (const member of members) member.joined();
  }
}

export class MemoryBroker {
  readonly topics = new Map<string, MemoryTopic>();
  readonly groups = new Map<string, MemoryGroup>();
  private roundRobin = 0;
  private nextMember = 0;
  /** Wakes consumers waiting for new messages. */
  readonly appended = new EventEmitter().setMaxListeners(0);

  createTopic(topic: string, partitions: number, configs: Record<string, string> = {}): boolean {
    if (this.topics.has(topic)) return false;
    this.topics.set(topic, {
      partitions: Array.from({ length: partitions }, () => []),
      configs: new Map(Object.entries(configs)),
    });
    return true;
  }

  partitionsOf(topic: string): number[] {
    return this.topics.get(topic)?.partitions.map((_, i) => i) ?? [];
  }

  append(
    topic: string,
    message: {
      key?: Buffer | string | null;
      value: Buffer | string | null;
      partition?: number;
      headers?: object;
      timestamp?: string;
    },
  ) {
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicOrPartition(topic);
    const key = message.key === undefined || message.key === null ? null : Buffer.from(message.key);
    const partition =
      message.partition ??
      (key ? partitionForKey(key, t.partitions.length) : this.roundRobin++ % t.partitions.length);
    const log = t.partitions[partition];
    if (!log) throw new UnknownTopicOrPartition(`${topic}[${partition}]`);
    const offset = String(log.length);
    log.push({
      key,
      value: message.value === null ? null : Buffer.from(message.value),
      headers: (message.headers ?? {}) as StoredMessage["headers"],
      timestamp: message.timestamp ?? String(Date.now()),
      offset,
      attributes: 0,
    });
    return { partition, offset };
  }

  group(groupId: string): MemoryGroup {
    let group = this.groups.get(groupId);
    if (!group) {
      group = new MemoryGroup(this);
      this.groups.set(groupId, group);
    }
    return group;
  }

  memberId(): string {
    return `member-${String(this.nextMember++).padStart(6, "0")}`;
  }

  /** A KafkaJS-shaped client over this broker (typed as Kafka for the code that takes one). */
  client(): Kafka {
    return {
      producer: () => new MemoryProducer(this),
      consumer: (config: { groupId: string }) => new MemoryConsumer(this, config.groupId),
      admin: () => new MemoryAdmin(this),
      logger: () => silentLogger,
    } as unknown as Kafka;
  }
}

const silentLogger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  namespace: () => silentLogger,
  setLogLevel() {},
};

class MemoryProducer {
  constructor(private readonly broker: MemoryBroker) {}
  async connect() {}
  async disconnect() {}
  on() {
    return () => {};
  }
  async send(record: {
    topic: string;
    messages: Array<{
      key?: Buffer | string | null;
      value: Buffer | string | null;
      partition?: number;
      headers?: object;
      timestamp?: string;
    }>;
  }) {
    // Check first, so a send to a missing topic appends nothing (as a failed produce request would).
    if (!this.broker.topics.has(record.topic)) throw new UnknownTopicOrPartition(record.topic);
    const byPartition = new Map<number, string>();
    for (const message of record.messages) {
      const { partition, offset } = this.broker.append(record.topic, message);
      if (!byPartition.has(partition)) byPartition.set(partition, offset);
    }
    this.broker.appended.emit("append");
    return [...byPartition].map(([partition, baseOffset]) => ({
      topicName: record.topic,
      partition,
      errorCode: 0,
      baseOffset,
      logAppendTime: "-1",
      logStartOffset: "0",
    }));
  }
}

type EachBatch = (payload: {
  batch: ReturnType<typeof batchOf>;
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  commitOffsetsIfNecessary(): Promise<void>;
  uncommittedOffsets(): unknown;
  isRunning(): boolean;
  isStale(): boolean;
  pause(): () => void;
}) => Promise<void>;

function batchOf(topic: string, partition: number, messages: StoredMessage[], highWatermark: string) {
  return {
    topic,
    partition,
    highWatermark,
    messages,
    isEmpty: () => messages.length === 0,
    firstOffset: () => messages[0]?.offset ?? null,
    lastOffset: () => messages[messages.length - 1]?.offset ?? String(Number(highWatermark) - 1),
    offsetLag: () =>
      String(Number(highWatermark) - 1 - Number(messages[messages.length - 1]?.offset ?? highWatermark)),
    offsetLagLow: () => String(Number(highWatermark) - 1 - Number(messages[0]?.offset ?? highWatermark)),
  };
}

const maxBatch = 5000;

export class MemoryConsumer {
  readonly memberId: string;
  readonly topics: string[] = [];
  readonly assignment = new Map<string, Set<number>>();
  readonly events = {
    GROUP_JOIN: "consumer.group_join",
    REBALANCING: "consumer.rebalancing",
    CRASH: "consumer.crash",
    STOP: "consumer.stop",
    DISCONNECT: "consumer.disconnect",
  };
  private readonly emitter = new EventEmitter();
  private fromBeginning = false;
  private running = false;
  private loop?: Promise<void>;
  /** Next offset to deliver per "topic:partition" (kafkajs: the resolved offset + 1). */
  private readonly positions = new Map<string, number>();
  /** Partitions sought since their batch was handed out: that batch is stale (kafkajs: any seek, even to where it was). */
  private readonly sought = new Set<string>();
  private readonly paused = new Set<string>();

  constructor(
    readonly broker: MemoryBroker,
    private readonly groupId: string,
  ) {
    this.memberId = broker.memberId();
  }

  async connect() {}

  on(event: string, listener: (e: unknown) => void) {
    this.emitter.on(event, listener);
    return () => this.emitter.off(event, listener);
  }

  async subscribe(options: { topics?: string[]; topic?: string; fromBeginning?: boolean }) {
    const topics = options.topics ?? (options.topic ? [options.topic] : []);
    for (const topic of topics) {
      if (!this.broker.topics.has(topic)) throw new UnknownTopicOrPartition(topic);
      if (!this.topics.includes(topic)) this.topics.push(topic);
    }
    this.fromBeginning = options.fromBeginning ?? false;
  }

  assign(topic: string, partition: number) {
    let set = this.assignment.get(topic);
    if (!set) {
      set = new Set();
      this.assignment.set(topic, set);
    }
    set.add(partition);
  }

  joined() {
    this.positions.clear();
    const memberAssignment = Object.fromEntries(
      [...this.assignment].map(([t, ps]) => [t, [...ps].sort((a, b) => a - b)]),
    );
    this.emitter.emit(this.events.GROUP_JOIN, {
      type: this.events.GROUP_JOIN,
      payload: { memberAssignment, groupId: this.groupId },
    });
  }

  async run(options: {
    eachBatch?: EachBatch;
    eachMessage?: (p: { topic: string; partition: number; message: StoredMessage }) => Promise<void>;
    autoCommit?: boolean;
    eachBatchAutoResolve?: boolean;
  }) {
    const group = this.broker.group(this.groupId);
    this.emitter.emit(this.events.REBALANCING, {
      type: this.events.REBALANCING,
      payload: { groupId: this.groupId },
    });
    group.members.push(this);
    group.rebalance();
    this.running = true;
    this.loop = this.poll(group, options);
  }

  pause(topics: Array<{ topic: string; partitions?: number[] }>) {
    for (const { topic, partitions } of topics) {
      for (const p of partitions ?? this.broker.partitionsOf(topic)) this.paused.add(`${topic}:${p}`);
    }
  }

  resume(topics: Array<{ topic: string; partitions?: number[] }>) {
    for (const { topic, partitions } of topics) {
      for (const p of partitions ?? this.broker.partitionsOf(topic)) this.paused.delete(`${topic}:${p}`);
    }
    this.broker.appended.emit("append");
  }

  seek({ topic, partition, offset }: { topic: string; partition: number; offset: string }) {
    this.positions.set(`${topic}:${partition}`, Number(offset));
    this.sought.add(`${topic}:${partition}`);
    this.broker.appended.emit("append");
  }

  async commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>) {
    const group = this.broker.group(this.groupId);
    for (const o of offsets) group.committed.set(`${o.topic}:${o.partition}`, o.offset);
  }

  async stop() {
    this.running = false;
    this.broker.appended.emit("append");
    await this.loop;
  }

  async disconnect() {
    await this.stop();
    const group = this.broker.group(this.groupId);
    const index = group.members.indexOf(this);
    if (index >= 0) {
      group.members.splice(index, 1);
      group.rebalance();
    }
    this.emitter.emit(this.events.DISCONNECT, { type: this.events.DISCONNECT });
  }

  private position(group: MemoryGroup, topic: string, partition: number): number {
    const key = `${topic}:${partition}`;
    let position = this.positions.get(key);
    if (position === undefined) {
      const committed = group.committed.get(key);
      const log = this.broker.topics.get(topic)!.partitions[partition]!;
      position = committed !== undefined ? Number(committed) : this.fromBeginning ? 0 : log.length;
      this.positions.set(key, position);
    }
    return position;
  }

  private async poll(group: MemoryGroup, options: Parameters<MemoryConsumer["run"]>[0]) {
    while (this.running) {
      let delivered = false;
      for (const [topic, partitions] of this.assignment) {
        for (const partition of [...partitions].sort((a, b) => a - b)) {
          if (!this.running) return;
          const key = `${topic}:${partition}`;
          if (this.paused.has(key)) continue;
          const log = this.broker.topics.get(topic)!.partitions[partition]!;
          const start = this.position(group, topic, partition);
          if (start >= log.length) continue;
          const messages = log.slice(start, start + maxBatch);
          delivered = true;
          await this.deliver(group, topic, partition, messages, String(log.length), options);
        }
      }
      if (!delivered && this.running) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.broker.appended.off("append", done);
            resolve();
          };
          const timer = setTimeout(done, 100);
          this.broker.appended.on("append", done);
        });
      }
    }
  }

  private async deliver(
    group: MemoryGroup,
    topic: string,
    partition: number,
    messages: StoredMessage[],
    highWatermark: string,
    options: Parameters<MemoryConsumer["run"]>[0],
  ) {
    const key = `${topic}:${partition}`;
    this.sought.delete(key);
    let resolved: number | undefined;
    const resolve = (offset: string) => {
      resolved = Number(offset) + 1;
    };
    const commit = async () => {
      if ((options.autoCommit ?? true) && resolved !== undefined) group.committed.set(key, String(resolved));
    };
    if (options.eachBatch) {
      await options.eachBatch({
        batch: batchOf(topic, partition, messages, highWatermark),
        resolveOffset: resolve,
        heartbeat: async () => {},
        commitOffsetsIfNecessary: commit,
        uncommittedOffsets: () => ({ topics: [] }),
        isRunning: () => this.running,
        isStale: () => this.sought.has(key),
        pause: () => {
          this.pause([{ topic, partitions: [partition] }]);
          return () => this.resume([{ topic, partitions: [partition] }]);
        },
      });
      if (options.eachBatchAutoResolve ?? true) resolve(messages[messages.length - 1]!.offset);
    } else if (options.eachMessage) {
      for (const message of messages) {
        if (!this.running) break;
        await options.eachMessage({ topic, partition, message });
        resolve(message.offset);
      }
    }
    // A seek during the batch wins over what the batch resolved.
    if (!this.sought.has(key) && resolved !== undefined) this.positions.set(key, resolved);
    await commit();
  }
}

class MemoryAdmin {
  constructor(private readonly broker: MemoryBroker) {}
  async connect() {}
  async disconnect() {}

  async listTopics() {
    return [...this.broker.topics.keys()];
  }

  async createTopics(options: {
    topics: Array<{
      topic: string;
      numPartitions?: number;
      configEntries?: Array<{ name: string; value: string }>;
    }>;
  }) {
    let created = false;
    for (const spec of options.topics) {
      const configs = Object.fromEntries((spec.configEntries ?? []).map((e) => [e.name, e.value]));
      created = this.broker.createTopic(spec.topic, spec.numPartitions ?? 1, configs) || created;
    }
    return created;
  }

  async deleteTopics(options: { topics: string[] }) {
    for (const topic of options.topics) this.broker.topics.delete(topic);
  }

  async createPartitions(options: { topicPartitions: Array<{ topic: string; count: number }> }) {
    for (const { topic, count } of options.topicPartitions) {
      const t = this.broker.topics.get(topic);
      if (!t) throw new UnknownTopicOrPartition(topic);
      while (t.partitions.length < count) t.partitions.push([]);
    }
    return true;
  }

  async fetchTopicMetadata(options: { topics?: string[] } = {}) {
    const names = options.topics ?? [...this.broker.topics.keys()];
    return {
      topics: names.map((name) => {
        if (!this.broker.topics.has(name)) throw new UnknownTopicOrPartition(name);
        return {
          name,
          partitions: this.broker.partitionsOf(name).map((partitionId) => ({
            partitionErrorCode: 0,
            partitionId,
            leader: 0,
            replicas: [0],
            isr: [0],
            offlineReplicas: [],
          })),
        };
      }),
    };
  }

  async fetchTopicOffsets(topic: string) {
    const t = this.broker.topics.get(topic);
    if (!t) throw new UnknownTopicOrPartition(topic);
    return t.partitions.map((log, partition) => ({
      partition,
      offset: String(log.length),
      high: String(log.length),
      low: "0",
    }));
  }

  async fetchOffsets(options: { groupId: string; topics: string[] }) {
    const group = this.broker.group(options.groupId);
    return options.topics.map((topic) => ({
      topic,
      partitions: this.broker.partitionsOf(topic).map((partition) => ({
        partition,
        offset: group.committed.get(`${topic}:${partition}`) ?? "-1",
        metadata: null,
      })),
    }));
  }

  async describeConfigs(options: { resources: Array<{ type: number; name: string }> }) {
    return {
      resources: options.resources.map((r) => ({
        resourceType: r.type,
        resourceName: r.name,
        errorCode: 0,
        errorMessage: null,
        configEntries: [...(this.broker.topics.get(r.name)?.configs ?? new Map())].map(
          ([configName, configValue]) => ({
            configName,
            configValue,
            isDefault: false,
            isSensitive: false,
            readOnly: false,
            configSynonyms: [],
          }),
        ),
      })),
      throttleTime: 0,
    };
  }

  async alterConfigs(options: {
    resources: Array<{ name: string; configEntries: Array<{ name: string; value: string }> }>;
  }) {
    for (const r of options.resources) {
      const t = this.broker.topics.get(r.name);
      if (!t) throw new UnknownTopicOrPartition(r.name);
      t.configs = new Map(r.configEntries.map((e) => [e.name, e.value]));
    }
    return { resources: [], throttleTime: 0 };
  }

  async describeCluster() {
    return { brokers: [{ nodeId: 0, host: "memory", port: 0 }], controller: 0, clusterId: "memory" };
  }
}
