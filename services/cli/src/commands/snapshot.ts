import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadDefinitions } from "@tessera/runtime";
import {
  isArchiveDir,
  type PartitionShard,
  readTopicInfo,
  runSnapshot,
  type SnapshotProgress,
  type SnapshotSelection,
  TableReadError,
  tableFormat,
} from "@tessera/stores";
import type { Definitions } from "@tessera/transforms";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";
import { parseShard, partitionShard, shardOf, writeShardSpine } from "../offline/shard.js";
import { positiveInt } from "../options.js";

interface SnapshotFlags {
  definitions: string;
  events: string;
  spine: string;
  out: string;
  features?: string[];
  fullNames?: boolean;
  json?: boolean;
  asOf: string;
  shard?: string;
  shardBy?: string;
  partitions?: number;
}

/** `--features view[:feature,...]` (repeatable) → selections; no flag → every feature of every view. */
export function selectFeatures(definitions: Definitions, specs: string[] | undefined): SnapshotSelection[] {
  if (!specs || specs.length === 0) {
    return definitions.views.map((view) => ({ view, features: view.features.map((_, i) => i) }));
  }
  const selections = new Map<string, SnapshotSelection>();
  for (const spec of specs) {
    const [viewName, list] = spec.split(":", 2) as [string, string | undefined];
    const view = definitions.views.find((v) => v.name === viewName);
    if (!view) {
      const known = definitions.views.map((v) => v.name).join(", ");
      throw new CliError(`--features ${spec}: unknown view "${viewName}" (views: ${known})`, exitCodes.usage);
    }
    const selection = selections.get(view.name) ?? { view, features: [] };
    const names = list ? list.split(",").map((n) => n.trim()) : view.features.map((f) => f.name);
    for (const name of names) {
      const index = view.features.findIndex((f) => f.name === name);
      if (index < 0) {
        const known = view.features.map((f) => f.name).join(", ");
        throw new CliError(
          `--features ${spec}: unknown feature "${name}" in view ${view.name} (features: ${known})`,
          exitCodes.usage,
        );
      }
      if (!selection.features.includes(index)) selection.features.push(index);
    }
    selections.set(view.name, selection);
  }
  return [...selections.values()];
}

/** A progress bar on a terminal (rows/s and ETA while features are computed), plain lines otherwise. */
function progressReporter(quiet: boolean) {
  const tty = process.stderr.isTTY === true && !quiet;
  let bar: SingleBar | undefined;
  let lastLine = 0;
  const started = Date.now();
  const report = (p: SnapshotProgress) => {
    if (tty && p.phase === "features") {
      if (!bar) {
        bar = new SingleBar({
          format:
            "features |{bar}| {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}",
          stream: process.stderr,
          hideCursor: true,
        });
        bar.start(p.total ?? 0, 0, { rate: "0" });
      }
      const seconds = (Date.now() - started) / 1000;
      bar.update(p.done, { rate: Math.round(p.done / Math.max(seconds, 0.001)).toLocaleString("en-US") });
      return;
    }
    const now = Date.now();
    const final = p.phase === "features" && p.done === p.total;
    if (now - lastLine < 2000 && !final && p.phase !== "write") return;
    lastLine = now;
    const of = p.total === undefined ? "" : `/${p.total}`;
    const label = {
      spine: "spine rows read",
      events: "events read",
      features: "spine rows computed",
      write: "writing",
    }[p.phase];
    if (!quiet || !tty) console.error(`snapshot: ${p.phase === "write" ? label : `${p.done}${of} ${label}`}`);
  };
  return { report, stop: () => bar?.stop() };
}

/** The source topic's partition count, as the archiver recorded it beside the archive. */
async function topicPartitions(events: string): Promise<number> {
  if (!(await isArchiveDir(events))) {
    throw new CliError(
      `--shard-by partition: ${events} is not an archive topic directory; use --shard-by entity`,
      exitCodes.usage,
    );
  }
  const info = await readTopicInfo(events);
  if (!info) {
    throw new CliError(
      `--shard-by partition: ${events} has no _topic.json (the archiver writes it); pass --partitions <n>, the topic's partition count`,
      exitCodes.usage,
    );
  }
  return info.partitions;
}

export function register(program: Command): void {
  program
    .command("snapshot")
    .description("Point-in-time correct training snapshot: feature values at each spine row's timestamp")
    .requiredOption("--definitions <defs>", "feature definitions (.yaml or .ts)")
    .requiredOption(
      "--events <path>",
      "events: .jsonl, .csv or .parquet file, a directory of them, or an archive topic directory (hours pruned)",
    )
    .requiredOption(
      "--spine <path>",
      "label spine (.csv or .parquet): the entity column and `timestamp` (epoch ms)",
    )
    .requiredOption("--out <path>", "output file; format by extension (.parquet, .csv, .jsonl)")
    .option(
      "--features <view[:feature,...]>",
      "only these features (repeatable; default all)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option("--full-names", "name feature columns <view>__<feature>")
    .option(
      "--as-of <time>",
      "event: windows over event time; ingestion: what serving could have seen (archive append times)",
      "event",
    )
    .option(
      "--shard <i/n>",
      "only shard i of n: on an archive, the topic's partitions p with p mod n = i (and only their files are read)",
    )
    .option(
      "--shard-by <how>",
      "partition (default on an archive: entities follow Kafka's key partitioning) or entity (FNV-1a of the key)",
    )
    .option(
      "--partitions <n>",
      "the source topic's partition count, for --shard-by partition (default: the archive's _topic.json)",
      positiveInt,
    )
    .option("--json", "print a JSON summary on stdout")
    .action(async (flags: SnapshotFlags) => {
      if (!tableFormat(flags.out)) {
        throw new CliError(`--out ${flags.out}: use a .parquet, .csv or .jsonl file`, exitCodes.usage);
      }
      const definitions = await loadDefinitions(flags.definitions);
      const selections = selectFeatures(definitions, flags.features);
      if (flags.asOf !== "event" && flags.asOf !== "ingestion") {
        throw new CliError(`--as-of ${flags.asOf}: use event or ingestion`, exitCodes.usage);
      }
      let spine = flags.spine;
      let partitionsOfShard: PartitionShard | undefined;
      if (flags.shard) {
        const shard = parseShard(flags.shard);
        const keys = new Set(selections.map((s) => s.view.source.entity));
        if (keys.size > 1) throw new CliError("--shard needs views with one entity column", exitCodes.usage);
        let owns: (key: string) => boolean = (key) => shardOf(key, shard.count) === shard.index;
        if (
          (flags.shardBy ?? "partition") === "partition" &&
          (flags.shardBy || (await isArchiveDir(flags.events)))
        ) {
          const partitions = flags.partitions ?? (await topicPartitions(flags.events));
          const byPartition = partitionShard(shard, partitions);
          partitionsOfShard = byPartition;
          owns = byPartition.owns;
        } else if (flags.shardBy !== undefined && flags.shardBy !== "entity") {
          throw new CliError(`--shard-by ${flags.shardBy}: use partition or entity`, exitCodes.usage);
        }
        spine = join(await mkdtemp(join(tmpdir(), "tessera-shard-")), "spine.parquet");
        await writeShardSpine(flags.spine, [...keys][0]!, owns, spine);
      }
      const progress = progressReporter(flags.json === true);
      let summary: Awaited<ReturnType<typeof runSnapshot>>;
      try {
        summary = await runSnapshot({
          selections,
          events: flags.events,
          spine,
          out: flags.out,
          fullNames: flags.fullNames === true,
          asOf: flags.asOf as "event" | "ingestion",
          ...(partitionsOfShard ? { shard: partitionsOfShard } : {}),
          onProgress: progress.report,
        });
      } catch (error) {
        if (error instanceof TableReadError) throw new CliError(error.message, exitCodes.input);
        throw error;
      } finally {
        progress.stop();
        if (spine !== flags.spine) await rm(dirname(spine), { recursive: true, force: true });
      }
      if (flags.json) {
        console.log(JSON.stringify(summary, null, 2));
        return;
      }
      const rate = Math.round(summary.spineRows / Math.max(summary.seconds.total, 1e-3));
      console.log(
        `wrote ${summary.out}: ${summary.spineRows} rows × ${summary.columns.length} columns ` +
          `(${summary.events} events, ${summary.entities} entities) in ${summary.seconds.total.toFixed(2)} s, ${rate} rows/s`,
      );
    });
}
