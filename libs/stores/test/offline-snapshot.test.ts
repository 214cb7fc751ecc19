import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDefinitionsYaml, type View } from "@tessera/transforms";
import { beforeAll, describe, expect, it } from "vitest";
import { readRows, runSnapshot, writeRows } from "../src/index.js";

const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1);

const view: View = parseDefinitionsYaml(`
sources: [{ name: tx, topic: payments.transactions, entity: card_id, timestamp: event_time }]
views:
  - name: card
    source: tx
    features:
      - { name: n_10m, op: count, window: 10m, hop: 5m }
      - { name: sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
      - { name: max_1h, op: max, column: amount, window: 1h }
      - { name: last_merchant, op: last, column: merchant, window: 1h }
`).views[0]!;
const all = { view, features: [0, 1, 2, 3] };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-snapshot-"));
});

async function collect(path: string) {
  const rows: Record<string, unknown>[] = [];
  for await (const row of readRows(path)) rows.push(row);
  return rows;
}

/** Naive answers, written plainly: scan every event for every spine row. */
function naive(
  events: { card_id: string; ts: number; amount: number | null; merchant: string }[],
  card: string,
  t: number,
) {
  const win = (w: number, h: number) =>
    events.filter((e) => e.card_id === card && e.ts >= Math.floor((t - w) / h) * h && e.ts < t);
  const hour = win(60 * MIN, 5 * MIN);
  const amounts = hour.map((e) => e.amount).filter((a): a is number => a !== null);
  const latest = [...hour].sort((a, b) => b.ts - a.ts)[0];
  return {
    n_10m: win(10 * MIN, 5 * MIN).length,
    sum_1h: amounts.reduce((a, b) => a + b, 0),
    max_1h: amounts.length ? Math.max(...amounts) : null,
    last_merchant: latest?.merchant ?? null,
  };
}

describe("runSnapshot", () => {
  it("computes point-in-time values from a directory of mixed files, for every output format", async () => {
    const events = Array.from({ length: 400 }, (_, i) => ({
      card_id: `c${(i * 7) % 5}`,
      ts: T0 + ((i * 7919) % 180) * MIN + (i % 3), // distinct per card, so "last" has no ties
      amount: i % 11 === 0 ? null : ((i * 31) % 200) / 4,
      merchant: `m${i % 4}`,
    }));
    const archive = join(dir, "archive");
    await mkdir(join(archive, "date=2024-01-01"), { recursive: true });
    // ISO-8601 event times in one file, epoch ms in the other.
    const asRow = (e: (typeof events)[number], iso: boolean) => ({
      card_id: e.card_id,
      event_time: iso ? new Date(e.ts).toISOString() : e.ts,
      amount: e.amount,
      merchant: e.merchant,
    });
    await writeRows(
      join(archive, "date=2024-01-01", "part-0.parquet"),
      events.slice(0, 200).map((e) => asRow(e, false)),
    );
    await writeRows(
      join(archive, "date=2024-01-01", "part-1.jsonl"),
      events.slice(200).map((e) => asRow(e, true)),
    );
    const spine = Array.from({ length: 150 }, (_, i) => ({
      card_id: `c${i % 6}`, // c5 has no events
      timestamp: T0 + ((i * 37) % 200) * MIN + (i % 2 === 0 ? 0 : 2),
      label: i % 2,
    }));
    // A spine time exactly on an event: that event must not count.
    spine.push({ card_id: events[5]!.card_id, timestamp: events[5]!.ts, label: 1 });
    await writeRows(join(dir, "spine.parquet"), spine);

    for (const ext of ["parquet", "csv", "jsonl"]) {
      const out = join(dir, `out.${ext}`);
      const summary = await runSnapshot({
        selections: [all],
        events: archive,
        spine: join(dir, "spine.parquet"),
        out,
      });
      expect(summary).toMatchObject({ spineRows: spine.length, events: 400, eventsUsed: 400, entities: 6 });
      const rows = await collect(out);
      expect(rows).toHaveLength(spine.length);
      rows.forEach((row, i) => {
        const s = spine[i]!;
        expect({ card_id: row.card_id, timestamp: row.timestamp, label: row.label }).toEqual(s);
        const want = naive(events, s.card_id, s.timestamp);
        expect({ n_10m: row.n_10m, max_1h: row.max_1h, last_merchant: row.last_merchant }).toEqual({
          n_10m: want.n_10m,
          max_1h: want.max_1h,
          last_merchant: want.last_merchant,
        });
        expect(row.sum_1h).toBeCloseTo(want.sum_1h, 9);
      });
    }
  });

  it("names feature columns <view>__<feature> with fullNames, and computes only the selected ones", async () => {
    await writeRows(join(dir, "ev.jsonl"), [{ card_id: "a", event_time: T0, amount: 2, merchant: "m" }]);
    await writeFile(join(dir, "sp.csv"), `card_id,timestamp\na,${T0 + 1}\n`);
    const out = join(dir, "named.jsonl");
    await runSnapshot({
      selections: [{ view, features: [1] }],
      events: join(dir, "ev.jsonl"),
      spine: join(dir, "sp.csv"),
      out,
      fullNames: true,
    });
    expect(await collect(out)).toEqual([{ card_id: "a", timestamp: T0 + 1, card__sum_1h: 2 }]);
  });

  it("fails fast naming file, row and column", async () => {
    const events = join(dir, "good.jsonl");
    await writeRows(events, [{ card_id: "a", event_time: T0, amount: 1, merchant: "m" }]);
    const run = (spine: string, ev = events) =>
      runSnapshot({ selections: [all], events: ev, spine, out: join(dir, "x.csv") });

    await writeFile(join(dir, "no-entity.csv"), `customer,timestamp\na,${T0}\n`);
    await expect(run(join(dir, "no-entity.csv"))).rejects.toMatchObject({ column: "card_id" });

    await writeFile(join(dir, "bad-time.csv"), `card_id,timestamp\na,${T0}\nb,soon\n`);
    await expect(run(join(dir, "bad-time.csv"))).rejects.toMatchObject({
      file: join(dir, "bad-time.csv"),
      row: 2,
      column: "timestamp",
    });

    await writeFile(join(dir, "spine-ok.csv"), `card_id,timestamp\na,${T0}\n`);
    const badEvents = join(dir, "bad-events.jsonl");
    await writeFile(
      badEvents,
      `{"card_id":"a","event_time":${T0},"amount":1,"merchant":"m"}\n{"card_id":"a","event_time":"noon","amount":1,"merchant":"m"}\n`,
    );
    await expect(run(join(dir, "spine-ok.csv"), badEvents)).rejects.toMatchObject({
      file: badEvents,
      row: 2,
      column: "event_time",
    });

    await writeFile(join(dir, "clash.csv"), `card_id,timestamp,n_10m\na,${T0},1\n`);
    await expect(run(join(dir, "clash.csv"))).rejects.toMatchObject({ column: "n_10m" });

    const noAmount = join(dir, "no-amount.csv");
    await writeFile(noAmount, `card_id,event_time,merchant\na,${T0},m\n`);
    await expect(run(join(dir, "spine-ok.csv"), noAmount)).rejects.toMatchObject({
      file: noAmount,
      column: "amount",
    });
  });
});
