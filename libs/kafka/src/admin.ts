import type { Bus, BusAdmin } from "./bus.js";

export interface TopicSpec {
  topic: string;
  partitions: number;
  /**
   * Replicas per partition of a new topic. Omitted: the broker's `default.replication.factor`
   * (1 on the single-node stack, 3 on the cluster stack and in production). An existing topic's
   * replication is never changed here (that is a partition reassignment).
   */
  replicationFactor?: number;
  /** `min.insync.replicas`: with acks=all, a write needs this many replicas. Omitted: the broker default. */
  minInsyncReplicas?: number;
  /** `retention.ms`; -1 keeps forever. Omitted: the broker default. */
  retentionMs?: number;
  cleanupPolicy?: "delete" | "compact";
}

export interface EnsureTopicsResult {
  created: string[];
  existing: string[];
  /** Existing topics whose partitions were increased or configs updated to match the spec. */
  updated: string[];
}

function configEntries(spec: TopicSpec): Array<{ name: string; value: string }> {
  const entries: Array<{ name: string; value: string }> = [];
  if (spec.retentionMs !== undefined) entries.push({ name: "retention.ms", value: String(spec.retentionMs) });
  if (spec.cleanupPolicy !== undefined) entries.push({ name: "cleanup.policy", value: spec.cleanupPolicy });
  if (spec.minInsyncReplicas !== undefined)
    entries.push({ name: "min.insync.replicas", value: String(spec.minInsyncReplicas) });
  return entries;
}

/**
 * Waits until every partition of the topics has a leader. With several brokers, the one asked may
 * learn of a new topic a moment after the controller created it, and answers "does not host this
 * topic-partition" until then: that is waited out, any other error is not.
 */
async function awaitLeaders(admin: BusAdmin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      const ready = metadata.topics.every(
        (t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0),
      );
      if (ready) return;
      last = "a partition has no leader yet";
    } catch (error) {
      const type = (error as { type?: string }).type ?? "";
      if (type !== "UNKNOWN_TOPIC_OR_PARTITION" && type !== "LEADER_NOT_AVAILABLE") throw error;
      last = (error as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`topics ${topics.join(", ")} not ready after ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Create topics that are missing and bring existing ones up to the spec. Idempotent: a second call
 * changes nothing. Partitions are only ever added (Kafka cannot remove them, and fewer would move keys).
 */
export async function ensureTopics(kafka: Bus, specs: TopicSpec[]): Promise<EnsureTopicsResult> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const present = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !present.has(s.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: false, // awaitLeaders below: KafkaJS' own wait fails on a multi-broker cluster
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor ?? -1, // -1: the broker's default
          configEntries: configEntries(spec),
        })),
      });
      await awaitLeaders(
        admin,
        missing.map((s) => s.topic),
      );
    }
    const existing = specs.filter((s) => present.has(s.topic));
    const updated = new Set<string>();
    if (existing.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: existing.map((s) => s.topic) });
      for (const spec of existing) {
        const current = metadata.topics.find((t) => t.name === spec.topic)?.partitions.length ?? 0;
        if (current < spec.partitions) {
          await admin.createPartitions({ topicPartitions: [{ topic: spec.topic, count: spec.partitions }] });
          updated.add(spec.topic);
        }
      }
      const withConfig = existing.filter((s) => configEntries(s).length > 0);
      if (withConfig.length > 0) {
        const described = await admin.describeTopicConfigs(withConfig.map((s) => s.topic));
        const toAlter = withConfig.filter((spec) => {
          const entries = described.find((r) => r.resourceName === spec.topic)?.configEntries ?? [];
          return configEntries(spec).some(
            (want) => entries.find((e) => e.configName === want.name)?.configValue !== want.value,
          );
        });
        if (toAlter.length > 0) {
          await admin.alterTopicConfigs(
            toAlter.map((spec) => ({ topic: spec.topic, configEntries: configEntries(spec) })),
          );
          for (const spec of toAlter) updated.add(spec.topic);
        }
      }
    }
    return {
      created: missing.map((s) => s.topic),
      existing: existing.map((s) => s.topic),
      updated: [...updated],
    };
  } finally {
    await admin.disconnect();
  }
}
