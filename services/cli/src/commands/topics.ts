import { createKafka, ensureTopics } from "@tessera/kafka";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";
import { positiveInt } from "../options.js";
import { topicSchemas } from "./schemas.js";

interface CreateOptions {
  brokers?: string;
  partitions: number;
  replicationFactor?: number;
  minInsyncReplicas?: number;
  retentionHours?: number;
  json?: boolean;
}

export function register(program: Command): void {
  const topics = program.command("topics").description("Manage Tessera's Kafka topics");
  topics
    .command("create")
    .description("Create the given topics (default: every topic in schemas/topics.json); idempotent")
    .argument("[topics...]", "topic names")
    .option("--brokers <list>", "comma-separated host:port (default: $KAFKA_BROKERS)")
    .option("--partitions <n>", "partitions per topic (only ever increased)", positiveInt, 6)
    .option(
      "--replication-factor <n>",
      "replicas of new topics (default: the broker's default.replication.factor; 3 in production)",
      positiveInt,
    )
    .option(
      "--min-insync-replicas <n>",
      "min.insync.replicas of the topics: acks=all writes need this many (2 with 3 replicas)",
      positiveInt,
    )
    .option("--retention-hours <n>", "retention.ms of the topics, in hours", positiveInt)
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tessera topics create --partitions 12 payments.transactions\n" +
        "  tessera topics create --replication-factor 3 --min-insync-replicas 2   # production\n",
    )
    .action(async (names: string[], options: CreateOptions) => {
      const brokers = (options.brokers ?? process.env["KAFKA_BROKERS"] ?? "").split(",").filter(Boolean);
      if (brokers.length === 0) {
        throw new CliError("no brokers: pass --brokers host:port or set KAFKA_BROKERS", exitCodes.usage);
      }
      const { replicationFactor: rf, minInsyncReplicas: minIsr } = options;
      if (rf !== undefined && minIsr !== undefined && minIsr > rf) {
        throw new CliError(
          `--min-insync-replicas ${minIsr} is more than --replication-factor ${rf}: no acks=all write could succeed`,
          exitCodes.usage,
        );
      }
      const wanted = names.length > 0 ? names : [...topicSchemas().keys()];
      const kafka = createKafka({ brokers, retries: 2 });
      let result: Awaited<ReturnType<typeof ensureTopics>>;
      try {
        result = await ensureTopics(
          kafka,
          wanted.map((topic) => ({
            topic,
            partitions: options.partitions,
            replicationFactor: rf,
            minInsyncReplicas: minIsr,
            retentionMs:
              options.retentionHours === undefined ? undefined : options.retentionHours * 3_600_000,
          })),
        );
      } catch (error) {
        throw new CliError(
          `Kafka at ${brokers.join(",")}: ${(error as Error).message}`,
          exitCodes.unavailable,
        );
      }
      if (options.json) console.log(JSON.stringify(result, null, 2));
      else {
        for (const t of result.created) console.log(`created  ${t}`);
        for (const t of result.updated) console.log(`updated  ${t}`);
        for (const t of result.existing.filter((t) => !result.updated.includes(t)))
          console.log(`exists   ${t}`);
      }
    });
}
