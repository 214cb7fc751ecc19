/**
 * The archive is a faithful offline copy: a snapshot computed from the archiver's Parquet files is
 * byte-for-byte the snapshot computed from the same events exported as JSONL.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSnapshot, writeRows } from "@tessera/stores";
import { validateDefinitions } from "@tessera/transforms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import { startArchiver } from "../src/index.js";
import { archiveAll, paymentSource, payments, type Source, topicContents } from "./fixtures.js";

const T0 = Date.UTC(2026, 9, 30, 22);
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
});
