import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  archiveFileName,
  eventFiles,
  HOUR_MS,
  isArchiveDir,
  listArchive,
  spineEventRange,
} from "../src/index.js";

const H0 = Date.UTC(2026, 10, 20, 22); // 22:00, so the hours cross a date boundary
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "archive-test-"));
  for (let h = 0; h < 5; h++) {
    for (const [p, first, last] of [
      [1, 10 + h * 100, 19 + h * 100],
      [0, 9 + h * 100, 99 + h * 100],
      [0, 1000 + h, 1000 + h],
    ] as const) {
      const file = join(dir, archiveFileName(H0 + h * HOUR_MS, p, first, last));
      await mkdir(join(file, ".."), { recursive: true });
      await writeFile(file, "");
    }
  }
  await mkdir(join(dir, "_inflight"), { recursive: true });
  await writeFile(join(dir, "_inflight", "part-0.json"), "{}");
  await writeFile(join(dir, "date=2026-11-20", "hour=22", ".part-00000-x.parquet.tmp"), "");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("archive layout", () => {
  it("names files by event date and hour, zero-padded so path order is log order", () => {
    expect(archiveFileName(H0, 3, 42, 1234)).toBe(
      join("date=2026-11-20", "hour=22", "part-00003-0000000000000000042-0000000000000001234.parquet"),
    );
  });

  it("lists data files in hour, partition, offset order, skipping temp files and markers", async () => {
    expect(await isArchiveDir(dir)).toBe(true);
    expect(await isArchiveDir(join(dir, "_inflight"))).toBe(false);
    // A date= folder alone (no hour= inside) is just a directory of files.
    const plain = await mkdtemp(join(tmpdir(), "not-archive-"));
    await mkdir(join(plain, "date=2024-01-01"));
    expect(await isArchiveDir(plain)).toBe(false);
    await rm(plain, { recursive: true });
    const files = await listArchive(dir);
    expect(files).toHaveLength(15);
    expect(files.slice(0, 3).map((f) => [f.hour, f.partition, f.firstOffset, f.lastOffset])).toEqual([
      [H0, 0, 9, 99],
      [H0, 0, 1000, 1000],
      [H0, 1, 10, 19],
    ]);
    expect(files.map((f) => f.hour)).toEqual([...files.map((f) => f.hour)].sort((a, b) => a - b));
  });

  it("prunes whole hours and dates outside the range", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -2, max: 7 }), fc.integer({ min: 1, max: 9 }), async (a, len) => {
        const from = H0 + a * HOUR_MS + 1234;
        const to = from + len * 1_800_000;
        const hours = new Set((await listArchive(dir, { from, to })).map((f) => f.hour));
        for (let h = 0; h < 5; h++) {
          const start = H0 + h * HOUR_MS;
          expect(hours.has(start)).toBe(start + HOUR_MS > from && start < to);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("reads only the hours a spine needs from an archive, and other paths as they are", async () => {
    const files = await eventFiles(dir, H0 + 2 * HOUR_MS + 10, H0 + 2 * HOUR_MS + 20, [
      { windowMs: HOUR_MS, hopMs: HOUR_MS },
    ]);
    expect(new Set(files.map((f) => f.split("/").slice(-3, -1).join("/")))).toEqual(
      new Set(["date=2026-11-21/hour=00", "date=2026-11-20/hour=23"]),
    );
    expect(await eventFiles(join(dir, "_inflight", "part-0.json"), 0, 1, [])).toEqual([
      join(dir, "_inflight", "part-0.json"),
    ]);
  });

  it("the spine's event range reaches back the longest window plus its hop alignment", () => {
    const t = Date.UTC(2026, 0, 2, 10, 17);
    const range = spineEventRange(t, t + 5000, [
      { windowMs: HOUR_MS, hopMs: 300_000 },
      { windowMs: 6 * HOUR_MS, hopMs: 1_800_000 },
    ]);
    expect(range).toEqual({ from: Date.UTC(2026, 0, 2, 4, 0), to: t + 5000 });
  });
});
