/**
 * The Bus (bus.ts) in one process: topics with partitions and offsets, keyed partitioning identical
 * to Kafka's (murmur2), consumer groups with committed offsets, batch delivery with resolveOffset,
 * pause/resume/seek, and the admin calls Tessera makes.
 *
 * It backs the embedded demo and unit tests; the bus contract suite runs against it and a real
 * broker (libs/kafka/test/memory-bus.test.ts, test/integration/bus-contract.test.ts). It is not a
 * broker: no durability, no transactions, no rebalance protocol beyond "partitions are dealt
 * round-robin to group members".
 */
import { EventEmitter } from "node:events";
import type {
  Assignment,
  BatchPayload,
  Bus,
  BusAdmin,
  BusBatch,
  BusConsumer,
  BusHeaders,
  BusProducer,
  BusRecord,
  NewTopic,
  OutgoingRecord,
  ProduceRequest,
  RunOptions,
  SentRecords,
  TopicPartitionOffset,
  TopicPartitions,
} from "./bus.js";
import { UnknownTopicError } from "./errors.js";
import { partitionForKey } from "./partitioner.js";

interface StoredMessage extends BusRecord {
  headers: BusHeaders;
}

interface MemoryTopic {
  partitions: StoredMessage[][];
  configs: Map<string, string>;
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

  append(topic: string, message: OutgoingRecord) {
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    const key = message.key === undefined || message.key === null ? null : Buffer.from(message.key);
    const partition =
      message.partition ??
      (key ? partitionForKey(key, t.partitions.length) : this.roundRobin++ % t.partitions.length);
    const log = t.partitions[partition];
    if (!log) throw new UnknownTopicError(`${topic}[${partition}]`);
    const offset = String(log.length);
    log.push({
      key,
      value: message.value === null ? null : Buffer.from(message.value),
      headers: message.headers ?? {},
      timestamp: message.timestamp ?? String(Date.now()),
      offset,
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

  /** A bus over this broker. */
  client(): Bus {
    return {
      producer: () => new MemoryProducer(this),
      consumer: (settings) => new MemoryConsumer(this, settings.groupId),
      admin: () => new MemoryAdmin(this),
    };
  }
}

class MemoryProducer implements BusProducer {
  constructor(private readonly broker: MemoryBroker) {}
  async connect() {}
  async disconnect() {}
  async send(record: ProduceRequest): Promise<SentRecords[]> {
    // Check first, so a send to a missing topic appends nothing (as a failed produce request would).
    if (!this.broker.topics.has(record.topic)) throw new UnknownTopicError(record.topic);
    const byPartition = new Map<number, string>();
    for (const message of record.messages) {
      const { partition, offset } = this.broker.append(record.topic, message);
      if (!byPartition.has(partition)) byPartition.set(partition, offset);
    }
    this.broker.appended.emit("append");
    return [...byPartition].map(([partition, baseOffset]) => ({
      topicName: record.topic,
      partition,
      baseOffset,
    }));
  }
}

function batchOf(
  topic: string,
  partition: number,
  messages: StoredMessage[],
  highWatermark: string,
): BusBatch {
  return {
    topic,
    partition,
    highWatermark,
    messages,
    firstOffset: () => messages[0]?.offset ?? null,
    lastOffset: () => messages[messages.length - 1]?.offset ?? String(Number(highWatermark) - 1),
  };
}

const maxBatch = 5000;

class MemoryConsumer implements BusConsumer {
  readonly memberId: string;
  readonly topics: string[] = [];
  readonly assignment = new Map<string, Set<number>>();
  private readonly joinListeners = new Set<(assignment: Assignment) => void>();
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

  onGroupJoin(listener: (assignment: Assignment) => void) {
    this.joinListeners.add(listener);
    return () => this.joinListeners.delete(listener);
  }

  /** Nothing here crashes on its own (no network): a handler's error rejects its run instead. */
  onCrash() {
    return () => {};
  }

  async subscribe(options: { topics: string[]; fromBeginning?: boolean }) {
    for (const topic of options.topics) {
      if (!this.broker.topics.has(topic)) throw new UnknownTopicError(topic);
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
    const assignment: Assignment = Object.fromEntries(
      [...this.assignment].map(([t, ps]) => [t, [...ps].sort((a, b) => a - b)]),
    );
    for (const listener of this.joinListeners) listener(assignment);
  }

  async run(options: RunOptions) {
    const group = this.broker.group(this.groupId);
    group.members.push(this);
    group.rebalance();
    this.running = true;
    this.loop = this.poll(group, options);
  }

  pause(topics: TopicPartitions[]) {
    for (const { topic, partitions } of topics) {
      for (const p of partitions ?? this.broker.partitionsOf(topic)) this.paused.add(`${topic}:${p}`);
    }
  }

  resume(topics: TopicPartitions[]) {
    for (const { topic, partitions } of topics) {
      for (const p of partitions ?? this.broker.partitionsOf(topic)) this.paused.delete(`${topic}:${p}`);
    }
    this.broker.appended.emit("append");
  }

  seek({ topic, partition, offset }: TopicPartitionOffset) {
    this.positions.set(`${topic}:${partition}`, Number(offset));
    this.sought.add(`${topic}:${partition}`);
    this.broker.appended.emit("append");
  }

  async commitOffsets(offsets: TopicPartitionOffset[]) {
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

  private async poll(group: MemoryGroup, options: RunOptions) {
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
    options: RunOptions,
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
      const payload: BatchPayload = {
        batch: batchOf(topic, partition, messages, highWatermark),
        resolveOffset: resolve,
        heartbeat: async () => {},
        commitOffsetsIfNecessary: commit,
        isRunning: () => this.running,
        isStale: () => this.sought.has(key),
      };
      await options.eachBatch(payload);
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

class MemoryAdmin implements BusAdmin {
  constructor(private readonly broker: MemoryBroker) {}
  async connect() {}
  async disconnect() {}

  async listTopics() {
    return [...this.broker.topics.keys()];
  }

  async createTopics(options: { topics: NewTopic[] }) {
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
      if (!t) throw new UnknownTopicError(topic);
      while (t.partitions.length < count) t.partitions.push([]);
    }
    return true;
  }

  async fetchTopicMetadata(options: { topics: string[] }) {
    return {
      topics: options.topics.map((name) => {
        if (!this.broker.topics.has(name)) throw new UnknownTopicError(name);
        return {
          name,
          partitions: this.broker
            .partitionsOf(name)
            .map((partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0] })),
        };
      }),
    };
  }

  async fetchTopicOffsets(topic: string) {
    const t = this.broker.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    return t.partitions.map((log, partition) => ({
      partition,
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
      })),
    }));
  }

  async deleteGroups(groupIds: string[]) {
    for (const groupId of groupIds) this.broker.groups.delete(groupId);
  }

  async describeTopicConfigs(topics: string[]) {
    return topics.map((resourceName) => ({
      resourceName,
      configEntries: [...(this.broker.topics.get(resourceName)?.configs ?? new Map<string, string>())].map(
        ([configName, configValue]) => ({ configName, configValue }),
      ),
    }));
  }

  async alterTopicConfigs(
    changes: Array<{ topic: string; configEntries: Array<{ name: string; value: string }> }>,
  ) {
    for (const change of changes) {
      const t = this.broker.topics.get(change.topic);
      if (!t) throw new UnknownTopicError(change.topic);
      t.configs = new Map(change.configEntries.map((e) => [e.name, e.value]));
    }
  }
}
