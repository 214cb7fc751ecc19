/**
 * `tessera backfill`: tiles of one view computed from the Parquet archive, written to the online
 * store, and handed over to the stream processor without a gap or a double count.
 *
 * Handover rule (docs/offline.md): per partition p, the backfill applies exactly the archived events
 * at offsets ≤ O_p, where O_p is the last archived offset of p, or — when some archived event is
 * stamped at or after the cut time (--to, at most now) — the offset just before the first such event.
 * It writes O_p as the last applied offset of the processor's consumer group, in the same atomic
 * store write as the last tiles. The processor skips offsets ≤ its stored offset and restores
 * entities from the stored tiles, so every event is counted once: by the backfill or by the stream.
 */
import { loadDefinitions } from "@tessera/runtime";
import {
  ARCHIVE_COLUMNS,
  type ArchiveFile,
  createOnlineStore,
  listArchive,
  type OnlineStore,
  type OnlineStoreConfig,
  readBatches,
  type StateWrite,
  StoreUnavailableError,
  TableReadError,
} from "@tessera/stores";
import { encodeTileState, parseTimestamp, tileStateExpiry, type View, ViewState } from "@tessera/transforms";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";

export interface BackfillOptions {
  view: View;
  /** The archive directory of the view's source topic (`<root>/<topic>`). */
  archive: string;
  /** Only events with from ≤ ts, and only tiles starting at or after `from`, are written. */
  from: number;
  /** Cut time: events stamped at or after it are left to the stream (see the handover rule). */
  to: number;
  store: OnlineStore;
  /** The processor's consumer group, `tessera-processor-<name>`. */
  consumerGroup: string;
  /** Overwrite offsets the processor already stored (only when it is stopped and its views are rebuilt). */
  force?: boolean;
  /** Processing time for late judgement and the store's retention (default Date.now()). */
  now?: number;
  /** Bound on the state bytes of one store write (default 4 MiB). */
  maxWriteBytes?: number;
  onProgress?: (p: { phase: "scan" | "apply" | "write"; done: number; total: number }) => void;
}

export interface BackfillSummary {
  view: string;
  version: string;
  consumerGroup: string;
  topic: string;
  files: number;
  events: number;
  applied: number;
  /** Events left to the stream: stamped before --from, at/after the cut, or beyond the handover offset. */
  notApplied: number;
  late: number;
  invalid: number;
  entities: number;
  /** Entity states written. */
  states: number;
  /** Partition → last applied offset written for the processor. */
  offsets: Record<string, number>;
  seconds: number;
}

export class BackfillRefusedError extends Error {}

export async function runBackfill(options: BackfillOptions): Promise<BackfillSummary> {
  const started = performance.now();
  const { view, store } = options;
  const now = options.now ?? Date.now();
  const cut = Math.min(options.to, now);
  const topic = view.source.topic;
  const progress = options.onProgress ?? (() => {});
  const all = await listArchive(options.archive);
  const files = await listArchive(options.archive, { from: options.from });
  const tsColumn = view.source.timestamp;

  // 1. Handover offsets: last archived offset per partition, pulled back before the first event at/after the cut.
  const handover = new Map<number, number>();
  for (const f of all) handover.set(f.partition, Math.max(handover.get(f.partition) ?? -1, f.lastOffset));
  const firstAfterCut = new Map<number, number>();
  await scan(
    files,
    [tsColumn, ARCHIVE_COLUMNS.partition, ARCHIVE_COLUMNS.offset],
    (columns, i) => {
      const ts = parseTimestamp(columns[tsColumn]![i]);
      if (ts === undefined || ts < cut) return;
      const p = Number(columns[ARCHIVE_COLUMNS.partition]![i]);
      const offset = Number(columns[ARCHIVE_COLUMNS.offset]![i]);
      firstAfterCut.set(p, Math.min(firstAfterCut.get(p) ?? offset, offset));
    },
    (done) => progress({ phase: "scan", done, total: files.length }),
  );
  for (const [p, first] of firstAfterCut) handover.set(p, Math.min(handover.get(p)!, first - 1));

  // 2. Refuse to move a running processor's offsets: that would count its events twice.
  const stored = await store.readOffsets(options.consumerGroup, topic);
  const differs =
    [...stored].some(([p, o]) => handover.get(p) !== o) || (stored.size > 0 && stored.size !== handover.size);
  if (differs && !options.force) {
    throw new BackfillRefusedError(
      `consumer group ${options.consumerGroup} already has stored offsets on ${topic} ` +
        `(${JSON.stringify(Object.fromEntries(stored))}, the archive hands over at ${JSON.stringify(Object.fromEntries(handover))}): ` +
        "its processor has run. Backfill a new processor name (a new consumer group), or stop it and pass --force",
    );
  }

  // 3. Apply the events the backfill owns, as the processor would (same evaluator, same late rule).
  const state = new ViewState(view);
  /** Each entity's partition (its events all come from one: the topic is keyed by entity). */
  const partitionOf = new Map<string, number>();
  let events = 0;
  let applied = 0;
  let late = 0;
  let invalid = 0;
  await scan(
    files,
    undefined,
    (columns, i) => {
      events++;
      const p = Number(columns[ARCHIVE_COLUMNS.partition]![i]);
      const offset = Number(columns[ARCHIVE_COLUMNS.offset]![i]);
      if (offset > (handover.get(p) ?? -1)) return;
      const row: Record<string, unknown> = {};
      for (const name in columns) row[name] = columns[name]![i];
      const prepared = state.runtime.prepare(row, offset);
      if (!prepared.ok) {
        if (!prepared.filtered) invalid++;
        return;
      }
      if (prepared.ts < options.from || prepared.ts >= cut) return;
      const result = state.applyPrepared(prepared, now);
      if (result.status === "applied") {
        applied++;
        partitionOf.set(prepared.entity, p);
      } else if (result.status === "late" || result.status === "future") late++;
    },
    (done) => progress({ phase: "apply", done, total: files.length }),
  );

  // 4. Write each entity's whole state, without the tiles that begin before --from (they would hold
  // only part of their events), stamped with its partition's handover offset; per partition, under
  // a claim of the processor's consumer group, in writes of bounded size, the offset with the last.
  await store.applyView({ name: view.name, version: view.version, retentionMs: view.retentionMs });
  for (const entityState of state.entities.values()) {
    entityState.layout.groups.forEach((group, g) => {
      entityState.dropBefore(g, Math.ceil(options.from / group.hopMs));
    });
  }
  const byPartition = new Map<number, string[]>();
  for (const [entity, p] of partitionOf) byPartition.set(p, [...(byPartition.get(p) ?? []), entity]);
  const budget = options.maxWriteBytes ?? 4 * 1024 * 1024;
  let written = 0;
  const entities = state.size;
  for (const [partition, offset] of handover) {
    const claim = await store.claimPartition(options.consumerGroup, topic, partition);
    const owner = { consumerGroup: options.consumerGroup, topic, partition, epoch: claim.epoch };
    let expected = claim.offset;
    const ids = byPartition.get(partition) ?? [];
    let batch: StateWrite[] = [];
    let bytes = 0;
    const write = async (last: boolean) => {
      const next = last ? offset : expected;
      await store.writeBatch({ owner, expectedOffset: expected, offset: next, states: batch });
      expected = next;
      written += batch.length;
      batch = [];
      bytes = 0;
      progress({ phase: "write", done: written, total: entities });
    };
    for (const entity of ids) {
      const encoded = encodeTileState(state.entities.get(entity)!, { partition, offset });
      if (bytes + encoded.byteLength > budget && batch.length > 0) await write(false);
      batch.push({
        view: view.name,
        version: view.version,
        entity,
        state: encoded,
        expiresAt: tileStateExpiry(state.entities.get(entity)!),
      });
      bytes += encoded.byteLength + entity.length;
    }
    await write(true);
  }

  return {
    view: view.name,
    version: view.version,
    consumerGroup: options.consumerGroup,
    topic,
    files: files.length,
    events,
    applied,
    notApplied: events - applied - late - invalid,
    late,
    invalid,
    entities,
    states: written,
    offsets: Object.fromEntries([...handover].map(([p, o]) => [String(p), o])),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Calls `each(columns, i)` for every row of the files, then `done(filesRead)` after each file. */
async function scan(
  files: ArchiveFile[],
  columns: string[] | undefined,
  each: (columns: Record<string, ArrayLike<unknown>>, i: number) => void,
  done: (files: number) => void,
): Promise<void> {
  let n = 0;
  for (const file of files) {
    for await (const batch of readBatches(file.path, columns ? { columns } : {})) {
      for (let i = 0; i < batch.length; i++) each(batch.columns, i);
    }
    done(++n);
  }
}

/** `--from`/`--to`: epoch ms, ISO-8601, or `now`, optionally minus a duration (`now-6h`). */
export function parseTime(text: string, flag: string, now = Date.now()): number {
  const relative = /^now(?:-(\d+)([smhd]))?$/.exec(text.trim());
  if (relative) {
    const unit =
      { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as "s" | "m" | "h" | "d"] ?? 0;
    return now - Number(relative[1] ?? 0) * unit;
  }
  const t = parseTimestamp(/^\d+$/.test(text) ? Number(text) : text);
  if (t === undefined)
    throw new CliError(`${flag} ${text}: use epoch ms, ISO-8601, now or now-<n>[smhd]`, exitCodes.usage);
  return t;
}

interface StoreFlags {
  store: string;
  redisUrl?: string;
  keyPrefix: string;
  keyspace: string;
}

/** The online store named by --store and the usual environment variables (the processor's defaults). */
export function storeFromFlags(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): OnlineStoreConfig {
  if (flags.store === "redis") {
    return {
      kind: "redis",
      url: flags.redisUrl ?? env["REDIS_URL"] ?? "redis://127.0.0.1:6379",
      keyPrefix: flags.keyPrefix,
    };
  }
  if (flags.store === "cassandra") {
    return {
      kind: "cassandra",
      contactPoints: (env["CASSANDRA_CONTACT_POINTS"] ?? "127.0.0.1:9042").split(","),
      localDataCenter: env["CASSANDRA_LOCAL_DC"] ?? "datacenter1",
      keyspace: flags.keyspace,
    };
  }
  throw new CliError(`--store ${flags.store}: use redis or cassandra`, exitCodes.usage);
}

interface BackfillFlags extends StoreFlags {
  definitions: string;
  view: string;
  archive: string;
  from?: string;
  to: string;
  processor?: string;
  force?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("backfill")
    .description(
      "Compute a view's tiles from the Parquet archive into the online store, then hand over to the stream",
    )
    .requiredOption("--definitions <defs>", "feature definitions (.yaml or .ts)")
    .requiredOption("--view <name>", "the view to backfill")
    .requiredOption("--archive <dir>", "archive root (the directory holding one folder per topic)")
    .option("--from <time>", "oldest event time to include (default: now minus the view's retention)")
    .option("--to <time>", "cut time: later events are left to the stream", "now")
    .option(
      "--processor <name>",
      "processor name: offsets go to consumer group tessera-processor-<name> (default: the view name)",
    )
    .option("--store <kind>", "online store: redis or cassandra", "redis")
    .option("--redis-url <url>", "Redis URL (default: REDIS_URL)")
    .option("--key-prefix <prefix>", "Redis key prefix (as the processor's)", "tessera:")
    .option("--keyspace <name>", "Cassandra keyspace (as the processor's)", "tessera")
    .option("--force", "overwrite offsets a processor already stored (stop it first)")
    .option("--json", "print a JSON summary on stdout")
    .action(async (flags: BackfillFlags) => {
      const definitions = await loadDefinitions(flags.definitions);
      const view = definitions.views.find((v) => v.name === flags.view);
      if (!view) {
        const known = definitions.views.map((v) => v.name).join(", ");
        throw new CliError(`--view ${flags.view}: no such view (views: ${known})`, exitCodes.usage);
      }
      const now = Date.now();
      const from = flags.from ? parseTime(flags.from, "--from", now) : now - view.retentionMs;
      const to = parseTime(flags.to, "--to", now);
      if (from >= to) throw new CliError(`--from must be before --to`, exitCodes.usage);
      const store = createOnlineStore(storeFromFlags(flags));
      const bar = progressBar(flags.json === true);
      try {
        const summary = await runBackfill({
          view,
          archive: `${flags.archive.replace(/\/+$/, "")}/${view.source.topic}`,
          from,
          to,
          store,
          consumerGroup: `tessera-processor-${flags.processor ?? view.name}`,
          force: flags.force === true,
          now,
          onProgress: bar.update,
        });
        bar.stop();
        if (flags.json) console.log(JSON.stringify(summary, null, 2));
        else
          console.log(
            `backfilled ${summary.view}@${summary.version}: ${summary.applied} events → ${summary.states} entity states ` +
              `in ${summary.seconds.toFixed(1)} s; ${summary.consumerGroup} resumes after offsets ${JSON.stringify(summary.offsets)}`,
          );
      } catch (error) {
        bar.stop();
        if (error instanceof BackfillRefusedError) throw new CliError(error.message, exitCodes.failed);
        if (error instanceof TableReadError) throw new CliError(error.message, exitCodes.input);
        if (error instanceof StoreUnavailableError) throw new CliError(error.message, exitCodes.unavailable);
        throw error;
      } finally {
        await store.close();
      }
    });
}

/** One bar per phase on a terminal; a line every few seconds otherwise. */
function progressBar(quiet: boolean) {
  const tty = process.stderr.isTTY === true && !quiet;
  let bar: SingleBar | undefined;
  let phase = "";
  let last = 0;
  return {
    update(p: { phase: string; done: number; total: number }) {
      if (tty) {
        if (p.phase !== phase) {
          bar?.stop();
          phase = p.phase;
          bar = new SingleBar({
            format: `${p.phase.padEnd(5)} |{bar}| {value}/{total}`,
            stream: process.stderr,
          });
          bar.start(p.total, 0);
        }
        bar!.update(p.done);
        return;
      }
      if (quiet || (Date.now() - last < 2000 && p.done < p.total)) return;
      last = Date.now();
      console.error(`backfill: ${p.phase} ${p.done}/${p.total}`);
    },
    stop: () => bar?.stop(),
  };
}
