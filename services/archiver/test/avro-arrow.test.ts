import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listArchive, readRows } from "@tessera/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  arrowFieldsOf,
  claimRoll,
  decimalText,
  latestClaim,
  planRoll,
  pruneClaims,
  writeRoll,
} from "../src/index.js";

const schema = {
  type: "record",
  name: "Order",
  namespace: "dev.tessera.test",
  fields: [
    { name: "id", type: "string" },
    { name: "qty", type: "int" },
    { name: "big", type: "long" },
    { name: "ratio", type: "float" },
    { name: "ok", type: "boolean" },
    { name: "note", type: ["null", "string"], default: null },
    { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
    { name: "day", type: { type: "int", logicalType: "date" } },
    { name: "price", type: { type: "bytes", logicalType: "decimal", precision: 9, scale: 2 } },
    { name: "status", type: { type: "enum", name: "Status", symbols: ["NEW", "DONE"] } },
    {
      name: "customer",
      type: {
        type: "record",
        name: "Customer",
        fields: [
          { name: "name", type: "string" },
          { name: "tier", type: ["null", "int"] },
        ],
      },
    },
    { name: "tags", type: { type: "array", items: "string" } },
    { name: "scores", type: { type: "map", values: ["null", "double"] } },
    { name: "either", type: ["null", "string", "long"] },
    { name: "again", type: ["null", "Customer"] },
  ],
};

const AT = Date.UTC(2026, 10, 20, 13, 5);
const row = (i: number) => ({
  id: `o${i}`,
  qty: i,
  big: 2 ** 40 + i,
  ratio: 0.5,
  ok: i % 2 === 0,
  note: i % 2 === 0 ? null : `n${i}`,
  at: AT + i * 1_800_000,
  day: 20_000,
  price: Buffer.from([0xff, 0x85]), // -123 → "-1.23"
  status: "DONE",
  customer: { name: `c${i}`, tier: i % 3 === 0 ? null : i },
  tags: i === 0 ? [] : ["a", `t${i}`],
  scores: { x: 1.5, y: null },
  either: i % 2 === 0 ? "s" : 7,
  again: null,
});

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "archiver-unit-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("Avro → Arrow", () => {
  it("maps types, nesting and nullability as documented", () => {
    const fields = arrowFieldsOf(schema);
    expect(
      Object.fromEntries(fields.map((f) => [f.field.name, `${f.field.type}${f.field.nullable ? "?" : ""}`])),
    ).toEqual({
      id: "Utf8",
      qty: "Int32",
      big: "Int64",
      ratio: "Float32",
      ok: "Bool",
      note: "Utf8?",
      at: "Timestamp<MILLISECOND, UTC>",
      day: "Date32<DAY>",
      price: "Utf8",
      status: "Utf8",
      customer: "Struct<{name:Utf8, tier:Int32}>",
      tags: "List<Utf8>",
      scores: "Map<{key:Utf8, value:Float64}>",
      either: "Utf8?",
      again: "Struct<{name:Utf8, tier:Int32}>?",
    });
  });

  it("keeps a recursive record as JSON text", () => {
    const list = {
      type: "record",
      name: "Node",
      fields: [
        { name: "v", type: "int" },
        { name: "next", type: ["null", "Node"] },
      ],
    };
    const [v, next] = arrowFieldsOf(list);
    expect(`${v!.field.type}`).toBe("Int32");
    expect(`${next!.field.type}`).toBe("Utf8");
    expect(next!.convert({ v: 2, next: null })).toBe('{"v":2,"next":null}');
  });

  it("refuses a non-record value schema", () => {
    expect(() => arrowFieldsOf({ type: "string" })).toThrow(/must be an Avro record/);
  });

  it("decodes decimals exactly", () => {
    expect(decimalText(Buffer.from([0x30, 0x39]), 2)).toBe("123.45");
    expect(decimalText(Buffer.from([0xff, 0x85]), 2)).toBe("-1.23");
    expect(decimalText(Buffer.from([0x05]), 3)).toBe("0.005");
  });

  it("writes a roll as one Parquet file per event hour that reads back with the same values", async () => {
    const rows = Array.from({ length: 6 }, (_, i) => ({
      value: row(i),
      offset: 100 + i,
      timestamp: AT + 99,
      eventTime: AT + i * 1_800_000,
    }));
    const fields = arrowFieldsOf(schema);
    const { files } = await writeRoll(root, {
      topic: "orders",
      partition: 2,
      firstOffset: 100,
      lastOffset: 105,
      schemaId: 7,
      schemaText: JSON.stringify(schema),
      fields,
      rows,
    });
    expect(files).toHaveLength(3);
    const listed = await listArchive(join(root, "orders"));
    expect(listed.map((f) => [f.hour, f.partition, f.firstOffset, f.lastOffset])).toEqual([
      [Date.UTC(2026, 10, 20, 13), 2, 100, 101],
      [Date.UTC(2026, 10, 20, 14), 2, 102, 103],
      [Date.UTC(2026, 10, 20, 15), 2, 104, 105],
    ]);
    const back: Record<string, unknown>[] = [];
    // Nested values come back as Arrow row proxies: compare their JSON.
    for await (const r of readRows(join(root, "orders"))) back.push(JSON.parse(JSON.stringify(r)));
    expect(back).toHaveLength(6);
    expect(back[1]).toEqual({
      id: "o1",
      qty: 1,
      big: 2 ** 40 + 1,
      ratio: 0.5,
      ok: false,
      note: "n1",
      at: AT + 1_800_000,
      day: 20_000 * 86_400_000,
      price: "-1.23",
      status: "DONE",
      customer: { name: "c1", tier: 1 },
      tags: ["a", "t1"],
      scores: { x: 1.5, y: null },
      either: "7",
      again: null,
      _kafka_partition: 2,
      _kafka_offset: 101,
      _kafka_timestamp: AT + 99,
    });
    expect(back[0]!["note"]).toBeNull();
    expect(back[0]!["tags"]).toEqual([]);
    expect(back[3]!["customer"]).toEqual({ name: "c3", tier: null });
    // Only the data files: no temp file is left beside them.
    expect(
      (await readdir(join(root, "orders"), { recursive: true })).filter((f) => f.includes(".tmp")),
    ).toEqual([]);
  });
});

describe("roll claims", () => {
  const rows = (first: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      value: row(i),
      offset: first + i,
      timestamp: AT,
      eventTime: AT + i * 1_800_000,
    }));
  const roll = (first: number, n: number) => ({
    topic: "rec",
    partition: 0,
    firstOffset: first,
    lastOffset: first + n - 1,
    schemaId: 7,
    schemaText: "{}",
    fields: arrowFieldsOf(schema),
    rows: rows(first, n),
  });
  const claimOf = (first: number, n: number) => ({
    partition: 0,
    firstOffset: first,
    lastOffset: first + n - 1,
    files: planRoll(roll(first, n)).map((p) => p.file),
  });

  it("gives a roll's start to one range only, and fences a writer behind the latest claim", async () => {
    expect(await latestClaim(root, "rec", 0)).toBeUndefined();
    expect(await claimRoll(root, "rec", claimOf(0, 4))).toEqual({ kind: "claimed" });
    // A second writer from the same offset gets the first one's range, whatever it wanted.
    expect(await claimRoll(root, "rec", claimOf(0, 9))).toEqual({ kind: "taken", claim: claimOf(0, 4) });
    expect(await claimRoll(root, "rec", claimOf(4, 3))).toEqual({ kind: "claimed" });
    expect(await latestClaim(root, "rec", 0)).toEqual(claimOf(4, 3));
    await pruneClaims(root, "rec", 0, 4);
    expect(await readdir(join(root, "rec", "_rolls", "part-00000"))).toEqual(["0000000000000000004.json"]);
    // A stalled writer wakes up with a roll from offset 0: its claim is free again (pruned), but a
    // later roll is claimed, so it is told it lost the partition, and its claim is taken back.
    expect(await claimRoll(root, "rec", claimOf(0, 2))).toEqual({ kind: "stale", newer: 4 });
    expect(await readdir(join(root, "rec", "_rolls", "part-00000"))).toEqual(["0000000000000000004.json"]);
  });

  it("writes a claimed roll again with the same keys and rows", async () => {
    const rowsOf = async (files: string[]) => {
      const out: unknown[] = [];
      for (const file of files) for await (const r of readRows(file)) out.push(JSON.parse(JSON.stringify(r)));
      return out;
    };
    const first = await writeRoll(root, roll(10, 5));
    const before = await rowsOf(first.files);
    // (The bytes may differ: parquet-wasm writes footer key-value pairs in hash order.)
    const again = await writeRoll(root, roll(10, 5));
    expect(again.files).toEqual(first.files);
    expect(await rowsOf(again.files)).toEqual(before);
    expect(before).toHaveLength(5);
    expect(first.files.map((f) => f.slice(join(root, "rec").length + 1))).toEqual(claimOf(10, 5).files);
  });
});
