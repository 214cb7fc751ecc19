/**
 * The offline storage functions behave the same on a local directory and in an S3 bucket (the
 * stack's moto): what the archive, the tables and the archiver's roll claims rely on.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clusters, newBucket } from "../../../test/support/index.js";
import {
  createObject,
  deleteObject,
  joinLocation,
  listDirectory,
  listFilesBelow,
  listTableFiles,
  locationKind,
  readObject,
  readRows,
  StorageError,
  writeObject,
  writeRows,
} from "../src/index.js";

const locals: string[] = [];
afterAll(async () => {
  for (const dir of locals) await rm(dir, { recursive: true, force: true });
});

const roots = [
  {
    where: "a directory",
    root: async () => {
      const dir = await mkdtemp(join(tmpdir(), "storage-"));
      locals.push(dir);
      return join(dir, "base");
    },
  },
  {
    where: "a bucket",
    root: async () => {
      await clusters("s3");
      return `s3://${await newBucket("storage")}/base`;
    },
  },
];

describe.each(roots)("offline storage on $where", ({ root: makeRoot }) => {
  it("writes, reads, lists and deletes like a filesystem", async () => {
    const root = await makeRoot();
    const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8");
    expect(await locationKind(root)).toBeUndefined();
    expect(await listDirectory(joinLocation(root, "nothing"))).toEqual([]);
    await writeObject(joinLocation(root, "a", "b", "one.txt"), "1");
    await writeObject(joinLocation(root, "a", "two.txt"), "2");
    await writeObject(joinLocation(root, "a", "two.txt"), "two"); // replaces
    expect(await locationKind(joinLocation(root, "a"))).toBe("directory");
    expect(await locationKind(joinLocation(root, "a", "two.txt"))).toBe("file");
    expect(text(await readObject(joinLocation(root, "a", "two.txt")))).toBe("two");
    const entries = (await listDirectory(joinLocation(root, "a"))).sort((x, y) =>
      x.name.localeCompare(y.name),
    );
    expect(entries).toEqual([
      { name: "b", directory: true },
      { name: "two.txt", directory: false },
    ]);
    expect((await listFilesBelow(root)).sort()).toEqual(
      [joinLocation(root, "a", "b", "one.txt"), joinLocation(root, "a", "two.txt")].sort(),
    );
    await deleteObject(joinLocation(root, "a", "two.txt"));
    await deleteObject(joinLocation(root, "a", "two.txt")); // nothing there is fine
    const missing = await readObject(joinLocation(root, "a", "two.txt")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StorageError);
    expect((missing as StorageError).missing).toBe(true);
  });

  it("creates an object only once, also when writers race", async () => {
    const root = await makeRoot();
    const claim = joinLocation(root, "_rolls", "0000000000000000042.json");
    expect(await createObject(claim, "first")).toBe(true);
    expect(await createObject(claim, "second")).toBe(false);
    expect(Buffer.from(await readObject(claim)).toString()).toBe("first");
    const racers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => createObject(joinLocation(root, "race.json"), `writer ${i}`)),
    );
    expect(racers.filter(Boolean)).toHaveLength(1);
    if (!root.startsWith("s3://"))
      expect((await readdir(join(root, "_rolls"))).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("tables: written and read back through the location, dot and underscore names skipped", async () => {
    const root = await makeRoot();
    const rows = [
      { id: "a", n: 1 },
      { id: "b", n: 2 },
    ];
    await writeRows(joinLocation(root, "t", "x.parquet"), rows);
    await writeRows(joinLocation(root, "t", "y.jsonl"), rows);
    await writeRows(joinLocation(root, "t", "z.csv"), rows);
    await writeObject(joinLocation(root, "t", "_topic.json"), "{}");
    await writeObject(joinLocation(root, "t", "_rolls", "h.parquet"), "not a table");
    expect(await listTableFiles(joinLocation(root, "t"))).toEqual(
      ["x.parquet", "y.jsonl", "z.csv"].map((f) => joinLocation(root, "t", f)),
    );
    const back: unknown[] = [];
    for await (const r of readRows(joinLocation(root, "t"))) back.push(r);
    expect(back).toEqual([...rows, ...rows, ...rows]);
  });
});
