/**
 * The archive is a faithful offline copy: a snapshot computed from the archiver's Parquet files is
 * byte-for-byte the snapshot computed from the same events exported as JSONL, and the same from an
 * S3 bucket the archiver wrote on its own. Partition-aligned shards open only their partitions' files.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  joinLocation,
  listArchive,
  MemoryOnlineStore,
  readObject,
  readRows,
  readTopicInfo,
  runSnapshot,
  spineEventRange,
  writeRows,
} from "@tessera/stores";
import {
  parseDefinitionsYaml,
  pointInTimeAsIngested,
  validateDefinitions,
  viewRuntime,
} from "@tessera/transforms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusters, kafkaBrokers, newBucket, services, uniqueName } from "../../../test/support/index.js";
import { runBackfill } from "../../cli/src/commands/backfill.js";
import { arrowFieldsOf, startArchiver, writeRoll } from "../src/index.js";
import {
  archiveAll,
  paymentSchema,
  paymentSource,
  payments,
  repoRoot,
  type Source,
  topicContents,
} from "./fixtures.js";

const T0 = Date.UTC(2026, 9, 30, 22);
const cliYaml = (topic: string) => `
sources:
  - { name: payments, topic: ${topic}, entity: card_id, timestamp: event_time }
views:
  - name: cards
    source: payments
    features:
      - { name: n_1h, op: count, window: 1h }
      - { name: sum_1h, op: sum, column: amount, window: 1h, hop: 10m }
      - { name: max_2h, op: max, column: amount, window: 2h }
      - { name: last_merchant, op: last, column: merchant_id, window: 1h }
`;
const cliView = (topic: string) => parseDefinitionsYaml(cliYaml(topic)).views[0]!;

/** `tessera snapshot` as a user runs it; returns its --json summary (or its exit status and stderr). */
function snapshotCli(args: string[], expectStatus = 0) {
  const run = spawnSync(
    process.execPath,
    ["--import", "tsx", "services/cli/src/main.ts", "snapshot", "--json", ...args],
    { cwd: repoRoot, encoding: "utf8", env: process.env },
  );
  expect(run.status, run.stderr).toBe(expectStatus);
  return expectStatus === 0 ? JSON.parse(run.stdout) : { stderr: run.stderr };
}

let source: Source;
let root: string;

beforeAll(async () => {
  source = await paymentSource(
    kafkaBrokers(),
    services().SCHEMA_REGISTRY_URL,
    uniqueName("snapshot-archive"),
    4,
  );
  root = await mkdtemp(join(tmpdir(), "tessera-snapshot-archive-"));
});

afterAll(async () => {
  await source?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("snapshot from the archive", () => {
  it("equals the snapshot from the same events as JSONL, bit for bit", { timeout: 90_000 }, async () => {
    // 8 hours across a date boundary; equal timestamps on purpose (ties go to the later log position).
    const events = payments(8000, T0, { hours: 8, cards: 60, seed: 5 }).map((e, i) =>
      i % 10 === 3 ? { ...e, event_time: e.event_time - (e.event_time % 60_000) } : e,
    );
    await source.publish(events);
    await archiveAll(source, root, events.length, startArchiver, { groupId: uniqueName("archiver") });

    // The same records, straight from the topic, in log order, as JSONL.
    const deserializer = source.registry.avroDeserializer();
    const rows: Record<string, unknown>[] = [];
    for (const record of await topicContents(source.kafka, source.topic)) {
      rows.push((await deserializer.deserialize(source.topic, record.value!)) as Record<string, unknown>);
    }
    expect(rows).toHaveLength(events.length);
    const jsonl = join(root, "events.jsonl");
    await writeRows(jsonl, rows);

    const spine = Array.from({ length: 3000 }, (_, i) => ({
      card_id: `card-${(i * 37) % 61}`, // one card with no events at all
      timestamp: T0 + ((i * 9_999_991) % (9 * 3_600_000)),
      label: i % 2,
    }));
    await writeRows(join(root, "spine.parquet"), spine);

    const view = validateDefinitions({
      sources: [{ name: "payments", topic: source.topic, entity: "card_id", timestamp: "event_time" }],
      views: [
        {
          name: "cards",
          source: "payments",
          features: [
            { name: "n_1h", op: "count", window: "1h" },
            { name: "sum_6h", op: "sum", column: "amount", window: "6h", hop: "10m" },
            { name: "mean_1d", op: "mean", column: "amount", window: "1d" },
            { name: "min_1h", op: "min", column: "amount", window: "1h" },
            { name: "max_2h", op: "max", column: "amount", window: "2h" },
            { name: "sd_3h", op: "stddev", column: "amount", window: "3h" },
            { name: "first_merchant", op: "first", column: "merchant_id", window: "1d" },
            { name: "last_country", op: "last", column: "country", window: "1h" },
            { name: "last_3", op: "last_k", column: "merchant_id", k: 3, window: "6h" },
            { name: "merchants", op: "approx_distinct", column: "merchant_id", window: "1d" },
            { name: "p90", op: "approx_quantile", column: "amount", quantile: 0.9, window: "1d" },
            { name: "top_2", op: "top_k", column: "country", k: 2, window: "1d" },
          ],
        },
      ],
    }).views[0]!;
    const selections = [{ view, features: view.features.map((_, i) => i) }];
    const fromArchive = await runSnapshot({
      selections,
      events: join(root, source.topic),
      spine: join(root, "spine.parquet"),
      out: join(root, "from-archive.parquet"),
    });
    const fromJsonl = await runSnapshot({
      selections,
      events: jsonl,
      spine: join(root, "spine.parquet"),
      out: join(root, "from-jsonl.parquet"),
    });
    expect(fromArchive.events).toBe(events.length);
    expect(fromJsonl.events).toBe(events.length);
    const a = readFileSync(join(root, "from-archive.parquet"));
    const b = readFileSync(join(root, "from-jsonl.parquet"));
    expect(a.length).toBeGreaterThan(10_000);
    expect(a.equals(b)).toBe(true);
  });

  it("prunes archive hours, shards the spine and reproduces serving with --as-of ingestion (CLI)", {
    timeout: 90_000,
  }, async () => {
    const view = cliView(source.topic);
    writeFileSync(join(root, "features.yaml"), cliYaml(source.topic));
    // A spine over 2 of the 8 hours: only those hours (and the windows before them) are read.
    const spine = Array.from({ length: 500 }, (_, i) => ({
      card_id: `card-${i % 60}`,
      timestamp: T0 + 5 * 3_600_000 + ((i * 7_777_777) % (2 * 3_600_000)),
    }));
    await writeRows(join(root, "spine2.parquet"), spine);
    const tessera = (...args: string[]) => {
      const run = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "services/cli/src/main.ts",
          "snapshot",
          "--definitions",
          join(root, "features.yaml"),
          "--spine",
          join(root, "spine2.parquet"),
          "--json",
          ...args,
        ],
        { cwd: repoRoot, encoding: "utf8" },
      );
      expect(run.status, run.stderr).toBe(0);
      return JSON.parse(run.stdout);
    };
    const pruned = tessera("--events", join(root, source.topic), "--out", join(root, "pruned.parquet"));
    const whole = await runSnapshot({
      selections: [{ view, features: view.features.map((_, i) => i) }],
      events: join(root, "events.jsonl"),
      spine: join(root, "spine2.parquet"),
      out: join(root, "whole.parquet"),
    });
    expect(pruned.events).toBeLessThan(whole.events);
    expect(readFileSync(join(root, "pruned.parquet")).equals(readFileSync(join(root, "whole.parquet")))).toBe(
      true,
    );

    // Two shards hold every row once, with the same values.
    const rowsOf = async (file: string) => {
      const out: Record<string, unknown>[] = [];
      for await (const r of readRows(file)) out.push(JSON.parse(JSON.stringify(r)));
      return out;
    };
    tessera("--events", join(root, source.topic), "--out", join(root, "s0.jsonl"), "--shard", "0/2");
    tessera("--events", join(root, source.topic), "--out", join(root, "s1.jsonl"), "--shard", "1/2");
    const key = (r: Record<string, unknown>) => JSON.stringify(r);
    const shards = [...(await rowsOf(join(root, "s0.jsonl"))), ...(await rowsOf(join(root, "s1.jsonl")))]
      .map(key)
      .sort();
    tessera("--events", join(root, source.topic), "--out", join(root, "all.jsonl"));
    expect(shards).toEqual((await rowsOf(join(root, "all.jsonl"))).map(key).sort());

    // --as-of ingestion, on an archive whose append times we choose: 1 in 6 events arrives 2 h late.
    const ingestDir = join(root, "ingest");
    const rows = payments(3000, T0, { hours: 8, cards: 20, seed: 8 }).map((e, i) => ({
      value: e as unknown as Record<string, unknown>,
      offset: i,
      timestamp: e.event_time + (i % 6 === 0 ? 2 * 3_600_000 : 50),
      eventTime: e.event_time,
    }));
    rows
      .sort((a, b) => a.timestamp - b.timestamp)
      .forEach((r, i) => {
        r.offset = i; // log order is arrival order
      });
    await writeRoll(ingestDir, {
      topic: "t",
      partition: 0,
      firstOffset: 0,
      lastOffset: rows.length - 1,
      schemaId: 1,
      schemaText: "{}",
      fields: arrowFieldsOf(paymentSchema),
      rows,
    });
    const byEvent = tessera("--events", join(ingestDir, "t"), "--out", join(root, "by-event.jsonl"));
    const byArrival = tessera(
      "--events",
      join(ingestDir, "t"),
      "--out",
      join(root, "by-arrival.jsonl"),
      "--as-of",
      "ingestion",
    );
    expect(byArrival.spineRows).toBe(byEvent.spineRows);
    const eventRows = await rowsOf(join(root, "by-event.jsonl"));
    const arrivalRows = await rowsOf(join(root, "by-arrival.jsonl"));
    const runtime = viewRuntime(view);
    let differ = 0;
    arrivalRows.forEach((row, r) => {
      if (row["n_1h"] !== eventRows[r]!["n_1h"]) differ++;
      const mine = rows.filter((e) => e.value["card_id"] === row["card_id"]);
      const columns = {
        ts: mine.map((e) => e.eventTime),
        seq: mine.map((e) => e.offset),
        inputs: view.features.map((f) => (f.column ? mine.map((e) => e.value[f.column!]) : null)),
      };
      const [values] = pointInTimeAsIngested(
        runtime,
        columns,
        mine.map((e) => e.timestamp),
        mine.map((_, i) => i),
        [row["timestamp"] as number],
      );
      for (const [j, f] of view.features.entries()) expect(row[f.name], f.name).toEqual(values![j]);
    });
    expect(differ).toBeGreaterThan(50); // late arrivals are missing from what serving saw
  });

  it("reads an archive in a bucket as one in a directory; partition shards open only their files (CLI)", {
    timeout: 150_000,
  }, async () => {
    // The archiver writes the same topic to a bucket, as a second consumer group with its own rolls.
    await clusters("s3");
    const bucket = `s3://${await newBucket("snapshot")}`;
    await archiveAll(source, joinLocation(bucket, "archive"), 8000, startArchiver, {
      groupId: uniqueName("archiver-s3"),
    });
    const local = join(root, source.topic);
    const remote = joinLocation(bucket, "archive", source.topic);
    expect(await readTopicInfo(remote)).toEqual({ topic: source.topic, partitions: 4 });
    const common = ["--definitions", join(root, "features.yaml"), "--spine", join(root, "spine.parquet")];

    // Byte for byte: the snapshot of the bucket (written to the bucket) and of the local archive.
    const fromBucket = snapshotCli([
      ...common,
      "--events",
      remote,
      "--out",
      joinLocation(bucket, "out", "s.parquet"),
    ]);
    snapshotCli([...common, "--events", local, "--out", join(root, "from-local.parquet")]);
    const bytes = Buffer.from(await readObject(joinLocation(bucket, "out", "s.parquet")));
    expect(bytes.length).toBeGreaterThan(5_000);
    expect(bytes.equals(readFileSync(join(root, "from-local.parquet")))).toBe(true);
    expect(fromBucket.events).toBe(8000);

    // Three shards of a 4-partition topic (3 does not divide 4: shard 0 owns partitions 0 and 3).
    const spineRows: Record<string, unknown>[] = [];
    for await (const r of readRows(join(root, "spine.parquet"))) spineRows.push(r);
    const times = spineRows.map((r) => r["timestamp"] as number);
    const range = spineEventRange(Math.min(...times), Math.max(...times) + 1, cliView(source.topic).features);
    const rowsOf = async (file: string) => {
      const out: string[] = [];
      for await (const r of readRows(file)) out.push(JSON.stringify(r));
      return out;
    };
    const whole = snapshotCli([...common, "--events", remote, "--out", join(root, "whole.jsonl")]);
    const allFiles = await listArchive(remote, range);
    expect(whole.eventFiles).toBe(allFiles.length);
    const union: string[] = [];
    const opened: number[] = [];
    for (let i = 0; i < 3; i++) {
      const out = joinLocation(bucket, "out", `shard-${i}.jsonl`);
      const summary = snapshotCli([...common, "--events", remote, "--out", out, "--shard", `${i}/3`]);
      const own = allFiles.filter((f) => f.partition % 3 === i);
      expect(own.length).toBeGreaterThan(0);
      // The reader's own count of what it opened: exactly its partitions' files of the range.
      expect(summary.eventFiles, `shard ${i}`).toBe(own.length);
      opened.push(summary.eventFiles);
      union.push(...(await rowsOf(out)));
    }
    expect(opened.reduce((a, b) => a + b, 0)).toBe(allFiles.length);
    expect(union.sort()).toEqual((await rowsOf(join(root, "whole.jsonl"))).sort());
    console.log(
      `sharded snapshot: ${allFiles.length} files in range, shards opened ${opened.join(" + ")}; ${union.length} rows`,
    );

    // The other offline readers take the bucket as they take a directory.
    const profile = (from: string, out: string) => {
      const run = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "services/cli/src/main.ts",
          "profile",
          "--from",
          from,
          "--out",
          out,
          "--features",
          "amount,country",
        ],
        { cwd: repoRoot, encoding: "utf8", env: process.env },
      );
      expect(run.status, run.stderr).toBe(0);
    };
    profile(remote, joinLocation(bucket, "out", "profile.json"));
    profile(local, join(root, "profile.json"));
    expect(
      JSON.parse(Buffer.from(await readObject(joinLocation(bucket, "out", "profile.json"))).toString()),
    ).toEqual(JSON.parse(readFileSync(join(root, "profile.json"), "utf8")));
    const backfill = async (archive: string) => {
      const { seconds: _, ...summary } = await runBackfill({
        view: cliView(source.topic),
        archive,
        from: T0 - 3_600_000,
        to: T0 + 9 * 3_600_000,
        now: T0 + 9 * 3_600_000,
        store: new MemoryOnlineStore({ now: () => T0 + 9 * 3_600_000 }),
        consumerGroup: "tessera-processor-s3-check",
      });
      return summary;
    };
    const fromRemote = await backfill(remote);
    expect(fromRemote.applied).toBeGreaterThan(0);
    expect(fromRemote).toEqual({ ...(await backfill(local)), files: fromRemote.files });

    // A topic not keyed by the entity cannot be sharded by partition: the reader says so, naming the row.
    const refused = snapshotCli(
      [
        ...common,
        "--events",
        join(root, "ingest", "t"),
        "--out",
        join(root, "x.jsonl"),
        "--shard",
        "0/2",
        "--partitions",
        "4",
      ],
      3,
    );
    expect(refused.stderr).toMatch(/was read from partition 0, but its key routes to partition [1-3]/);
  });
});
