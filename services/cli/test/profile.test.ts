import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildProfile, compareToProfile, type ReferenceProfile } from "@tessera/stats";
import { writeRows } from "@tessera/stores";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { partitionRange, register } from "../src/commands/profile.js";
import { CliError, exitCodes } from "../src/errors.js";

let dir: string;

async function run(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((line) => {
    lines.push(String(line));
  });
  try {
    await program.parseAsync(["profile", ...args], { from: "user" });
  } finally {
    spy.mockRestore();
  }
  return lines.join("\n");
}

const readProfile = async (path: string) => JSON.parse(await readFile(path, "utf8")) as ReferenceProfile;

/** Rows of a small payments table: an id, a time, a number, a category and a sometimes-null count. */
function rows(n: number, start: number, step: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `t-${i}`,
    event_time: start + i * step,
    amount: Math.round(((i * 7919) % 1000) * 1.5) / 10,
    country: ["FR", "DE", "ES"][(i * 31) % 3]!,
    txn_count: i % 10 === 0 ? null : i % 13,
  }));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-profile-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("tessera profile", () => {
  it("profiles a snapshot exactly as the stats library does, without the excluded columns", async () => {
    const data = rows(3000, Date.UTC(2026, 0, 1), 1000);
    const file = join(dir, "snapshot.jsonl");
    await writeFile(file, `${data.map((r) => JSON.stringify(r)).join("\n")}\n`);
    const out = join(dir, "profile.json");
    const said = await run("--from", file, "--out", out, "--exclude", "id,event_time");
    expect(said).toMatch(/3000 rows .*numerical: amount, txn_count; categorical: country/);
    const profile = await readProfile(out);
    const expected = buildProfile(data.map(({ id: _id, event_time: _t, ...rest }) => rest));
    expect(profile).toEqual(JSON.parse(JSON.stringify(expected)));
    expect(profile.features["txn_count"]).toMatchObject({ type: "numerical", nulls: 300, count: 2700 });
    // The drift worker's comparison of the same data against it: no drift.
    const same = compareToProfile(
      profile.features["amount"]!,
      data.map((r) => r.amount),
    );
    expect(same.type === "numerical" && same.psi).toBeLessThan(1e-9);
  });

  it("a Parquet snapshot gives the same profile as the same rows in JSONL", async () => {
    const data = rows(1500, Date.UTC(2026, 0, 1), 1000);
    const parquet = join(dir, "snapshot.parquet");
    const jsonl = join(dir, "same.jsonl");
    await writeRows(parquet, data);
    await writeFile(jsonl, `${data.map((r) => JSON.stringify(r)).join("\n")}\n`);
    await run("--from", parquet, "--out", join(dir, "p.json"), "--exclude", "id,event_time");
    await run("--from", jsonl, "--out", join(dir, "j.json"), "--exclude", "id,event_time");
    const fromParquet = await readProfile(join(dir, "p.json"));
    expect(Object.keys(fromParquet.features).sort()).toEqual(["amount", "country", "txn_count"]);
    expect(fromParquet).toEqual(await readProfile(join(dir, "j.json")));
  });

  it("--since/--until over a Hive archive opens only the partitions in range and filters rows by time", async () => {
    const archive = join(dir, "archive");
    const hour = (h: number) => join(archive, "date=2026-01-01", `hour=${String(h).padStart(2, "0")}`);
    for (const h of [0, 1, 2]) {
      await mkdir(hour(h), { recursive: true });
      // 120 rows per hour, 30 s apart: each partition holds exactly its hour.
      const data = rows(120, Date.UTC(2026, 0, 1, h), 30_000).map((r) => ({
        ...r,
        amount: r.amount + h * 1000,
      }));
      await writeFile(
        join(hour(h), "part-0-0-119.jsonl"),
        `${data.map((r) => JSON.stringify(r)).join("\n")}\n`,
      );
    }
    // A partition far outside the range holds a broken file: reading it would fail the command.
    await mkdir(hour(5), { recursive: true });
    await writeFile(join(hour(5), "part-0-0-0.jsonl"), "{not json\n");
    const out = join(dir, "ranged.json");
    const said = await run(
      "--from",
      archive,
      "--out",
      out,
      "--since",
      "2026-01-01T01:30:00Z",
      "--until",
      String(Date.UTC(2026, 0, 1, 2, 30)),
      "--time-column",
      "event_time",
      "--features",
      "amount,country",
    );
    expect(said).toMatch(/120 rows from 2 file\(s\) \(2 outside the time range skipped\)/);
    const profile = await readProfile(out);
    expect(Object.keys(profile.features).sort()).toEqual(["amount", "country"]);
    const amount = profile.features["amount"]!;
    // Rows from 01:30 to 02:30: the second half of hour 1 (amounts ≥ 1000) and first half of hour 2.
    expect(amount.type === "numerical" && [amount.min >= 1000, amount.max < 3000]).toEqual([true, true]);
  });

  it("bad flags and unreadable input are CliErrors with the documented exit codes", async () => {
    const out = join(dir, "x.json");
    await expect(run("--from", join(dir, "missing.csv"), "--out", out)).rejects.toMatchObject({
      exitCode: exitCodes.input,
    });
    await expect(
      run("--from", dir, "--out", out, "--since", "2026-01-02", "--until", "2026-01-01"),
    ).rejects.toBeInstanceOf(CliError);
    await expect(run("--from", dir, "--out", out, "--since", "yesterday-ish")).rejects.toThrow(
      /ISO 8601 or epoch ms/,
    );
  });

  it("partitionRange reads date= and hour= path segments", () => {
    expect(partitionRange("/a/date=2026-03-04/hour=07/part-1-0-9.parquet")).toEqual({
      start: Date.UTC(2026, 2, 4, 7),
      end: Date.UTC(2026, 2, 4, 8),
    });
    expect(partitionRange("/a/date=2026-03-04/part.parquet")).toEqual({
      start: Date.UTC(2026, 2, 4),
      end: Date.UTC(2026, 2, 5),
    });
    expect(partitionRange("/a/snapshot.parquet")).toBeUndefined();
  });
});
