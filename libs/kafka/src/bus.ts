/**
 * The Kafka that Tessera relies on, as Tessera's own interface: produce, consume with a group
 * (batches, seek, pause/resume, commit, the assignment after each rebalance) and the few admin
 * calls services make. Services and libraries are written against these types only.
 *
 * Two adapters implement it and pass one contract suite (test/contracts/bus-contract.ts):
 * `createKafka` (kafkajs-bus.ts, the only file that touches the Kafka client library) and
 * `MemoryBroker.client()` (memory.ts, for unit tests and the embedded demo). Swapping the client
 * library is a change to kafkajs-bus.ts alone.
 *
 * Offsets are decimal strings, as Kafka's 64-bit offsets do not fit a JavaScript number exactly.
 */

/** Record headers; Kafka allows a name more than once (then an array). */
export type BusHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** A record as consumed. */
export interface BusRecord {
  key: Buffer | null;
  value: Buffer | null;
  /** Milliseconds since the epoch, as a string. */
  timestamp: string;
  offset: string;
  headers?: BusHeaders;
}

/** A record to produce. Without a partition, a keyed record goes to murmur2(key) mod partitions. */
export interface OutgoingRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  partition?: number;
  headers?: BusHeaders;
  timestamp?: string;
}

/** Where one produce request put records of a partition. */
export interface SentRecords {
  topicName: string;
  partition: number;
  baseOffset?: string;
}

export interface ProduceRequest {
  topic: string;
  messages: OutgoingRecord[];
  /** -1 (default on our producers): every in-sync replica; 1: the leader only. */
  acks?: number;
  compression?: "gzip";
}

export interface BusProducer {
  connect(): Promise<void>;
  send(request: ProduceRequest): Promise<SentRecords[]>;
  disconnect(): Promise<void>;
}

export interface ProducerSettings {
  /** Exactly one copy per send even when a request is retried (Kafka's idempotent producer). */
  idempotent?: boolean;
  maxInFlightRequests?: number;
  /** Default false: a send to a missing topic fails instead of creating it with broker defaults. */
  allowAutoTopicCreation?: boolean;
  retries?: number;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

export interface TopicPartitions {
  topic: string;
  /** Omitted: every partition of the topic. */
  partitions?: number[];
}

/** The records of one partition handed to a consumer at once. */
export interface BusBatch {
  topic: string;
  partition: number;
  /** The partition's end offset when the batch was fetched. */
  highWatermark: string;
  messages: BusRecord[];
  firstOffset(): string | null;
  lastOffset(): string;
}

export interface BatchPayload {
  batch: BusBatch;
  /** Marks records up to this offset as consumed: the position (and a later commit) moves past it. */
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  /** Commits what is resolved, when auto-commit is on. */
  commitOffsetsIfNecessary(): Promise<void>;
  /** False once the consumer is stopping. */
  isRunning(): boolean;
  /** True once the partition was sought since this batch was fetched: the batch is not to be resolved. */
  isStale(): boolean;
}

export interface MessagePayload {
  topic: string;
  partition: number;
  message: BusRecord;
}

export interface RunOptions {
  eachBatch?(payload: BatchPayload): Promise<void>;
  /** One record at a time (tests, tools); each is resolved after its handler returns. */
  eachMessage?(payload: MessagePayload): Promise<void>;
  /** Default true: commit resolved offsets on the client's schedule. */
  autoCommit?: boolean;
  /** Default true: a batch is resolved whole after eachBatch returns. */
  eachBatchAutoResolve?: boolean;
  /** Partitions whose batches are handled at the same time (default 1). */
  partitionsConsumedConcurrently?: number;
}

export interface ConsumerSettings {
  groupId: string;
  sessionTimeout?: number;
  heartbeatInterval?: number;
  rebalanceTimeout?: number;
  maxBytesPerPartition?: number;
  maxBytes?: number;
  /** How long an idle fetch waits for records before returning empty. */
  maxWaitTimeInMs?: number;
}

/** This member's partitions after a rebalance, per topic. */
export type Assignment = Record<string, number[]>;

export interface BusConsumer {
  connect(): Promise<void>;
  subscribe(options: { topics: string[]; fromBeginning?: boolean }): Promise<void>;
  /** Joins the group and starts delivering; resolves once running. */
  run(options: RunOptions): Promise<void>;
  /** The next batch of the partition starts at this offset (any batch in hand becomes stale). */
  seek(position: TopicPartitionOffset): void;
  pause(topics: TopicPartitions[]): void;
  resume(topics: TopicPartitions[]): void;
  commitOffsets(offsets: TopicPartitionOffset[]): Promise<void>;
  /** After every rebalance, with this member's assignment. Returns a function that unsubscribes. */
  onGroupJoin(listener: (assignment: Assignment) => void): () => void;
  /** The client stopped on an error; `restart` says whether it rejoins by itself. */
  onCrash(listener: (error: Error, restart: boolean) => void): () => void;
  /** Finishes the batch in hand, then leaves the group. */
  disconnect(): Promise<void>;
}

export interface PartitionEnds {
  partition: number;
  /** The next offset to be written. */
  high: string;
  /** The first offset still held. */
  low: string;
}

export interface GroupOffsets {
  topic: string;
  /** `offset` is "-1" where the group has committed nothing. */
  partitions: Array<{ partition: number; offset: string }>;
}

export interface TopicMetadata {
  name: string;
  /** `leader` is -1 while the partition has none; `isr`: the replicas in sync with it. */
  partitions: Array<{ partitionId: number; leader: number; replicas: number[]; isr: number[] }>;
}

export interface NewTopic {
  topic: string;
  numPartitions?: number;
  /** -1: the broker's default. */
  replicationFactor?: number;
  configEntries?: Array<{ name: string; value: string }>;
}

export interface TopicConfigs {
  resourceName: string;
  configEntries: Array<{ configName: string; configValue: string }>;
}

export interface BusAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  listTopics(): Promise<string[]>;
  /** Resolves false when nothing was created (the topics existed). */
  createTopics(options: { topics: NewTopic[]; waitForLeaders?: boolean }): Promise<boolean>;
  createPartitions(options: { topicPartitions: Array<{ topic: string; count: number }> }): Promise<boolean>;
  deleteTopics(options: { topics: string[] }): Promise<void>;
  fetchTopicMetadata(options: { topics: string[] }): Promise<{ topics: TopicMetadata[] }>;
  fetchTopicOffsets(topic: string): Promise<PartitionEnds[]>;
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<GroupOffsets[]>;
  deleteGroups(groupIds: string[]): Promise<unknown>;
  describeTopicConfigs(topics: string[]): Promise<TopicConfigs[]>;
  alterTopicConfigs(
    changes: Array<{ topic: string; configEntries: Array<{ name: string; value: string }> }>,
  ): Promise<void>;
}

export interface Bus {
  producer(settings?: ProducerSettings): BusProducer;
  consumer(settings: ConsumerSettings): BusConsumer;
  admin(): BusAdmin;
}
