import type { Kafka } from "kafkajs";

export interface TopicSpec {
  topic: string;
  partitions: number;
  /** Defaults to 1: right for the local stack; production sets 3. */
  replicationFactor?: number;
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
  return entries;
}

/**
 * Create topics that are missing and bring existing ones up to the spec. Idempotent: a second call
 * changes nothing. Partitions are only ever added (Kafka cannot remove them, and fewer would move keys).
 */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<EnsureTopicsResult> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const present = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !present.has(s.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor ?? 1,
          configEntries: configEntries(spec),
        })),
      });
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
        const described = await admin.describeConfigs({
          includeSynonyms: false,
          resources: withConfig.map((s) => ({ type: 2 /* TOPIC */, name: s.topic })),
        });
        const toAlter = withConfig.filter((spec) => {
          const entries = described.resources.find((r) => r.resourceName === spec.topic)?.configEntries ?? [];
          return configEntries(spec).some(
            (want) => entries.find((e) => e.configName === want.name)?.configValue !== want.value,
          );
        });
        if (toAlter.length > 0) {
          await admin.alterConfigs({
            validateOnly: false,
            resources: toAlter.map((spec) => ({
              type: 2,
              name: spec.topic,
              configEntries: configEntries(spec),
            })),
          });
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
