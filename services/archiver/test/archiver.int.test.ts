/**
 * The archiver on the real stack, killed with SIGKILL mid-stream several times, archiving to a local
 * directory and to an S3 bucket: the archive must end with every valid record of the topic exactly
 * once, and every malformed one on the dead-letter topic. On the bucket, pyarrow's own S3 reader
 * (test/oracles/pyarrow) must read the same.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  isS3,
  joinLocation,
  listArchive,
  listDirectory,
  locationKind,
  readRows,
  readTopicInfo,
} from "@tessera/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusters, kafkaBrokers, newBucket, services, uniqueName } from "../../../test/support/index.js";
import {
  paymentSource,
  payments,
  repoRoot,
  type Source,
  sleep,
  spawnArchiver,
  topicContents,
} from "./fixtures.js";

const T0 = Date.UTC(2026, 10, 20, 7);
const N = 12_000;
const PARTITIONS = 3;
const pyarrow = join(repoRoot, "test/oracles/pyarrow/.venv/bin/python");

const roots = [
  { where: "a local directory", root: () => mkdtemp(join(tmpdir(), "tessera-archive-")) },
  {
    where: "an S3 bucket",
    root: async () => {
      await clusters("s3");
      return `s3://${await newBucket("archive")}/tessera`;
    },
  },
];

describe.each(roots)("archiver under SIGKILL, archiving to $where", ({ root: makeRoot }) => {
  let source: Source;
  let root: string;
  let dlt: string;

  beforeAll(async () => {
    root = await makeRoot();
    source = await paymentSource(
      kafkaBrokers(),
      services().SCHEMA_REGISTRY_URL,
      uniqueName("archive-kill"),
      PARTITIONS,
    );
    dlt = uniqueName("archive-dlt");
    await import("@tessera/kafka").then(({ ensureTopics }) =>
      ensureTopics(source.kafka, [{ topic: dlt, partitions: 1 }]),
    );
  });

  afterAll(async () => {
    await source?.close();
    if (root && !isS3(root)) await rm(root, { recursive: true, force: true });
  });

  it("archives every record exactly once across kills", { timeout: 150_000 }, async () => {
    const env = {
      TESSERA_ARCHIVER_TOPICS: source.topic,
      TESSERA_ARCHIVER_ROOT: root,
      TESSERA_ARCHIVER_GROUP_ID: uniqueName("archiver"),
      TESSERA_ARCHIVER_ROLL_MAX_RECORDS: "400",
      TESSERA_ARCHIVER_ROLL_MAX_AGE_MS: "300",
      TESSERA_ARCHIVER_DEAD_LETTER_TOPIC: dlt,
      TESSERA_ARCHIVER_OPS_PORT: "0",
      // A killed member holds its partitions until its session times out: keep that short here.
      TESSERA_ARCHIVER_SESSION_TIMEOUT_MS: "6000",
    };
    const topicDir = joinLocation(root, source.topic);
    const events = payments(N, T0, { hours: 5 });
    const malformed = [Buffer.from("not avro"), Buffer.from([0, 0, 0, 0, 0, 1, 2]), Buffer.from("{}")];
    // Produce in chunks while the archiver is killed and restarted.
    const producing = (async () => {
      for (let i = 0; i < events.length; i += 500) {
        await source.publish(events.slice(i, i + 500));
        if (i === 3000) await source.publishRaw(malformed, 1);
        await sleep(1000);
      }
    })();
    const claimDirs = Array.from({ length: PARTITIONS }, (_, p) =>
      joinLocation(topicDir, "_rolls", `part-${String(p).padStart(5, "0")}`),
    );
    const claims = async () => {
      const names = await Promise.all(claimDirs.map((d) => listDirectory(d)));
      // Claim files only: a run killed while creating one leaves its temporary file (`.<claim>.tmp`).
      return names.flatMap((entries, p) =>
        entries.filter((e) => /^\d{19}\.json$/.test(e.name)).map((e) => `${p}/${e.name}`),
      );
    };
    const archivedFiles = async () =>
      (await locationKind(topicDir)) === "directory" ? (await listArchive(topicDir)).length : 0;
    const kills: number[] = [];
    const outputs: string[] = [];
    for (let run = 0; run < 5; run++) {
      const archiver = spawnArchiver(env);
      // Wait until this run has written files of its own, then kill it: odd runs the moment a new
      // roll is claimed (its files being written, its offset not yet committed), even runs at once.
      const before = await archivedFiles();
      const started = Date.now();
      while ((await archivedFiles()) <= before && Date.now() - started < 30_000) await sleep(50);
      if (run % 2 === 1) {
        const seen = new Set(await claims());
        const until = Date.now() + 5000;
        while (Date.now() < until && (await claims()).every((c) => seen.has(c))) await sleep(2);
      }
      archiver.child.kill("SIGKILL");
      await new Promise((r) => archiver.child.once("exit", r));
      kills.push(Date.now() - started);
      console.log(
        `run ${run}: killed after ${Date.now() - started} ms, ${await archivedFiles()} files (${before} before)`,
      );
      outputs.push(archiver.output());
    }
    await producing;

    // A last run that is allowed to finish: wait until every offset is archived, then stop it cleanly.
    const topic = await topicContents(source.kafka, source.topic);
    const expected = topic.filter((r) => r.value && r.value[0] === 0 && r.value.length > 5 + 7);
    const last = spawnArchiver(env);
    const deadline = Date.now() + 60_000;
    let archived: Record<string, unknown>[] = [];
    while (Date.now() < deadline) {
      await sleep(1000);
      archived = [];
      if ((await locationKind(topicDir)) === "directory")
        for await (const row of readRows(topicDir)) archived.push(row);
      if (archived.length >= expected.length) break;
    }
    // Its ops endpoints: ready, and the metrics count what this run archived.
    const opsUrl = /"ops":"(http:[^"]+)"/.exec(last.output())?.[1];
    expect(opsUrl, last.output()).toBeDefined();
    expect((await fetch(`${opsUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/tessera_archiver_records_total\{topic="[^"]+"\} [1-9]/);
    expect(metrics).toMatch(/tessera_archiver_files_total/);
    last.child.kill("SIGTERM");
    const code = await new Promise((r) => last.child.once("exit", r));
    outputs.push(last.output());
    const adoptions = outputs
      .join("")
      .split("\n")
      .filter((l) => l.includes("adopting an uncommitted roll")).length;
    console.log(
      `kill test (${root}): ${kills.length} SIGKILLs after ${kills.join(", ")} ms; ${adoptions} uncommitted rolls adopted; ${archived.length} rows archived of ${topic.length} records (${topic.length - expected.length} malformed)`,
    );
    expect(code).toBe(0);

    // Exactly once: one row per (partition, offset), and the same set as the topic's valid records.
    const keys = archived.map((r) => `${r["_kafka_partition"]}:${r["_kafka_offset"]}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(keys)).toEqual(new Set(expected.map((r) => `${r.partition}:${r.offset}`)));
    // Same content: every produced transaction, once, with its fields.
    const byId = new Map(archived.map((r) => [r["transaction_id"], r]));
    expect(byId.size).toBe(events.length);
    for (const e of events) {
      const row = byId.get(e.transaction_id)!;
      expect(Object.fromEntries(Object.keys(e).map((k) => [k, row[k]]))).toEqual(e);
    }
    // Hive layout: each file holds only its hour's events.
    for (const file of await listArchive(topicDir)) {
      for await (const row of readRows(file.path, { columns: ["event_time"] })) {
        expect(Math.floor((row["event_time"] as number) / 3_600_000) * 3_600_000).toBe(file.hour);
      }
    }
    // Beside the data: the topic's partition count, and only each partition's latest claim.
    expect(await readTopicInfo(topicDir)).toEqual({ topic: source.topic, partitions: PARTITIONS });
    expect((await claims()).length).toBe(PARTITIONS);
    if (!isS3(root)) {
      // No data file's temporary is left (an adopting writer removes its dead predecessor's); the
      // claims directory may keep the temporary of a claim a SIGKILL interrupted (never read).
      const temps = (await readdir(topicDir, { recursive: true })).filter(
        (p) => String(p).endsWith(".tmp") && !String(p).startsWith("_rolls"),
      );
      expect(temps).toEqual([]);
    }

    // Malformed records: on the dead-letter topic (at least once; a replay may repeat them).
    const letters = await topicContents(source.kafka, dlt);
    expect(letters.length).toBeGreaterThanOrEqual(malformed.length);

    if (isS3(root)) {
      // An independent reader: pyarrow's S3 filesystem and Hive dataset discovery, nothing of ours.
      expect(existsSync(pyarrow), "run scripts/setup (it creates test/oracles/pyarrow/.venv)").toBe(true);
      const read = JSON.parse(
        execFileSync(pyarrow, [join(repoRoot, "test/oracles/pyarrow/read_archive.py"), topicDir], {
          encoding: "utf8",
          env: process.env,
          maxBuffer: 64 << 20,
        }),
      ) as { files: number; dates: string[]; rows: [number, number, string][] };
      expect(read.files).toBe((await listArchive(topicDir)).length);
      expect(read.dates).toEqual(["2026-11-20"]);
      const theirs = read.rows.map(([p, o]) => `${p}:${o}`);
      expect(theirs.length).toBe(expected.length);
      expect(new Set(theirs)).toEqual(new Set(keys));
      expect(new Set(read.rows.map((r) => r[2]))).toEqual(new Set(events.map((e) => e.transaction_id)));
    }
  });
});
