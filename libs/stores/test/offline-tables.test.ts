import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readBatches, readRows, TableReadError, writeColumns, writeRows } from "../src/index.js";
import { NumberColumn } from "../src/offline/number-column.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-tables-"));
});

async function all(path: string, columns?: string[]) {
  const rows: Record<string, unknown>[] = [];
  for await (const row of readRows(path, columns ? { columns } : {})) rows.push(row);
  return rows;
}

const rows = [
  { id: "a", ts: 1_700_000_000_000, amount: 1.5, ok: true, note: 'x,"y"\nz' },
  { id: "b", ts: 1_700_000_000_001, amount: null, ok: false, note: null },
];

describe("readRows / writeRows", () => {
  for (const ext of ["csv", "jsonl", "parquet"]) {
    it(`round-trips .${ext}`, async () => {
      const file = join(dir, `round.${ext}`);
      await writeRows(file, rows);
      const back = await all(file);
      // CSV has no booleans: they come back as text.
      const expected = ext === "csv" ? rows.map((r) => ({ ...r, ok: String(r.ok) })) : rows;
      expect(back).toEqual(expected);
    });
  }

  it("projects columns and fails on a missing one with the column named", async () => {
    const file = join(dir, "proj.parquet");
    await writeRows(file, rows);
    expect(await all(file, ["amount", "id"])).toEqual([
      { amount: 1.5, id: "a" },
      { amount: null, id: "b" },
    ]);
    await expect(all(file, ["nope"])).rejects.toMatchObject({ file, column: "nope" });
    await writeFile(join(dir, "proj.csv"), "id,ts\na,1\n");
    await expect(all(join(dir, "proj.csv"), ["nope"])).rejects.toBeInstanceOf(TableReadError);
  });

  it("parses CSV numbers, empties, quotes and CRLF", async () => {
    const file = join(dir, "parse.csv");
    await writeFile(file, 'a,b,c\r\n1,"",x\r\n-2.5e3,,"q""uote"\r\n');
    expect(await all(file)).toEqual([
      { a: 1, b: "", c: "x" },
      { a: -2500, b: null, c: 'q"uote' },
    ]);
  });

  it("names file and row of a malformed JSONL line and a ragged CSV row", async () => {
    const jsonl = join(dir, "bad.jsonl");
    await writeFile(jsonl, '{"a":1}\n{"a":\n');
    await expect(all(jsonl)).rejects.toMatchObject({ file: jsonl, row: 2 });
    const csv = join(dir, "bad.csv");
    await writeFile(csv, "a,b\n1,2\n3\n");
    await expect(all(csv)).rejects.toMatchObject({ file: csv, row: 2 });
  });

  it("reads a directory recursively in sorted path order, skipping hidden and _ files", async () => {
    const root = join(dir, "archive");
    await mkdir(join(root, "date=2024-01-02"), { recursive: true });
    await mkdir(join(root, "date=2024-01-01"), { recursive: true });
    await writeRows(join(root, "date=2024-01-02", "part-0.parquet"), [{ n: 3 }]);
    await writeRows(join(root, "date=2024-01-01", "part-1.jsonl"), [{ n: 2 }]);
    await writeRows(join(root, "date=2024-01-01", "part-0.csv"), [{ n: 1 }]);
    await writeFile(join(root, "_SUCCESS.csv"), "n\n99\n");
    await writeFile(join(root, "date=2024-01-01", ".tmp.jsonl"), '{"n":98}\n');
    expect((await all(root)).map((r) => r.n)).toEqual([1, 2, 3]);
  });

  it("gives Parquet int64 as numbers and honours an explicit schema", async () => {
    const file = join(dir, "typed.parquet");
    await writeRows(file, [{ n: 1, x: 2 }], { schema: { x: "float64", n: "int64" } });
    const batches = [];
    for await (const batch of readBatches(file)) batches.push(batch);
    expect(Object.keys(batches[0]!.columns)).toEqual(["x", "n"]);
    expect(batches[0]!.columns.n![0]).toBe(1);
    expect(await all(file)).toEqual([{ x: 2, n: 1 }]);
  });

  it("keeps int64 exact (negative, beyond 2^32) and nulls in numeric Parquet columns", async () => {
    const file = join(dir, "ints.parquet");
    const data = [
      { n: -5, big: 2 ** 40 + 3, f: null },
      { n: null, big: -(2 ** 50) - 1, f: 1.5 },
      { n: 0, big: Number.MAX_SAFE_INTEGER, f: -0.25 },
    ];
    await writeRows(file, data, { schema: { n: "int64", big: "int64", f: "float64" } });
    expect(await all(file)).toEqual(data);
  });

  it("writes and reads back a table of several row groups (encoded group by group)", async () => {
    const file = join(dir, "groups.parquet");
    const n = 300_000; // three groups of up to 128k rows
    const columns = {
      id: Array.from({ length: n }, (_, i) => `k${i}`),
      x: Array.from({ length: n }, (_, i) => (i % 7 === 0 ? null : i / 4)),
    };
    await writeColumns(file, columns, { metadata: { note: "several groups" } });
    const batches: { firstRow: number; length: number }[] = [];
    let checked = 0;
    let wrong = 0;
    for await (const batch of readBatches(file)) {
      batches.push({ firstRow: batch.firstRow, length: batch.length });
      for (let i = 0; i < batch.length; i++, checked++) {
        if (batch.columns.id![i] !== columns.id[checked] || batch.columns.x![i] !== columns.x[checked])
          wrong++;
      }
    }
    expect({ checked, wrong }).toEqual({ checked: n, wrong: 0 });
    expect(batches.map((b) => b.length)).toEqual([131_072, 131_072, 37_856]);
  });

  for (const [ext, n] of [
    ["parquet", 300_000],
    ["csv", 1000],
    ["jsonl", 1000],
  ] as const) {
    it(`writes NumberColumns as the plain values they hold (.${ext}, ${n} rows)`, async () => {
      const file = join(dir, `numbers.${ext}`);
      // Floats, and integers past 2^32 (int64 is written as two words); every fifth row null, and
      // one value overwritten by null after it was set.
      const x = (i: number) => (i % 5 === 0 ? null : i / 3 - 1000);
      const k = (i: number) => (i % 5 === 0 ? null : i * 2 ** 20 + 3);
      const floats = new NumberColumn(n);
      const ints = new NumberColumn(n);
      for (let i = 0; i < n; i++) {
        floats.set(i, x(i) ?? 7);
        if (x(i) === null) floats.set(i, null);
        ints.set(i, k(i));
      }
      await writeColumns(file, { x: floats, k: ints }, { schema: { x: "float64", k: "int64" } });
      let wrong = 0;
      let checked = 0;
      for await (const batch of readBatches(file)) {
        for (let i = 0; i < batch.length; i++, checked++) {
          const [gotX, gotK] = [batch.columns.x![i], batch.columns.k![i]];
          // CSV gives back text; an empty field is null.
          const plain = (v: unknown) => (ext === "csv" ? (v === "" || v === null ? null : Number(v)) : v);
          if (plain(gotX) !== x(checked) || plain(gotK) !== k(checked)) wrong++;
        }
      }
      expect({ checked, wrong }).toEqual({ checked: n, wrong: 0 });
    });
  }

  it("reads a list of tables in turn, a directory's files included, and names a missing one when its turn comes", async () => {
    const sub = join(dir, "listed");
    await writeRows(join(sub, "b.parquet"), [{ id: "b" }]);
    await writeRows(join(dir, "listed-a.parquet"), [{ id: "a" }]);
    await writeRows(join(dir, "listed-c.jsonl"), [{ id: "c" }]);
    const seen: unknown[] = [];
    const missing = join(dir, "listed-gone.parquet");
    const list = [join(dir, "listed-a.parquet"), sub, join(dir, "listed-c.jsonl"), missing];
    const reading = (async () => {
      for await (const batch of readBatches(list)) seen.push(...Array.from(batch.columns.id!));
    })();
    // The missing file's read starts early (a prefetch) but fails only in its turn, after the others.
    await expect(reading).rejects.toThrow(/listed-gone\.parquet/);
    expect(seen).toEqual(["a", "b", "c"]);
  });

  it("reads millisecond timestamps as epoch ms, with and without nulls", async () => {
    const file = join(dir, "times.parquet");
    const data = [
      { t: 1_700_000_000_123, u: -5 },
      { t: null, u: 0 },
      { t: 2 ** 41 + 7, u: 86_400_000 },
    ];
    await writeRows(file, data, { schema: { t: "timestamp", u: "timestamp" } });
    expect(await all(file)).toEqual(data);
  });

  it("writes an async iterable as JSONL", async () => {
    const file = join(dir, "async.jsonl");
    async function* gen() {
      yield { a: 1 };
      yield { a: 2 };
    }
    await writeRows(file, gen());
    expect(await readFile(file, "utf8")).toBe('{"a":1}\n{"a":2}\n');
  });
});
