import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { partitionForKey } from "@tessera/kafka";
import { readRows, writeRows } from "@tessera/stores";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseShard, partitionShard, shardOf, writeShardSpine } from "../src/offline/shard.js";

describe("--shard i/n", () => {
  it("parses i/n and refuses the rest", () => {
    expect(parseShard("2/4")).toEqual({ index: 2, count: 4 });
    for (const bad of ["4/4", "1", "a/b", "0/0", "-1/3"]) expect(() => parseShard(bad)).toThrow(/--shard/);
  });

  it("matches FNV-1a reference values and spreads keys evenly", () => {
    // FNV-1a 32-bit of "a" is 0xe40c292c, of "foobar" 0xbf9cf968.
    expect(shardOf("a", 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect(shardOf("foobar", 1000)).toBe(0xbf9cf968 % 1000);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) counts[shardOf(`card-${i}`, 4)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });

  it("by partition: each partition has one shard, and an entity goes with its key's partition", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 48 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 30 }),
        (partitions, n, keys) => {
          const shards = Array.from({ length: n }, (_, i) =>
            partitionShard({ index: i, count: n }, partitions),
          );
          for (let p = 0; p < partitions; p++) expect(shards.filter((s) => s.partitions(p))).toHaveLength(1);
          // n ∤ P: the shards own ⌈P/n⌉ or ⌊P/n⌋ partitions each.
          const owned = shards.map(
            (s) => Array.from({ length: partitions }, (_, p) => p).filter(s.partitions).length,
          );
          for (const k of owned) expect([Math.floor(partitions / n), Math.ceil(partitions / n)]).toContain(k);
          for (const key of keys) {
            const owners = shards.filter((s) => s.owns(key));
            expect(owners).toHaveLength(1);
            expect(owners[0]!.partitions(partitionForKey(key, partitions))).toBe(true);
            expect(owners[0]!.partitionOf(key)).toBe(partitionForKey(key, partitions));
          }
        },
      ),
    );
  });

  it("the shards of a spine partition it: every row in exactly one, an entity never split", async () => {
    const dir = await mkdtemp(join(tmpdir(), "shard-"));
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 50 }),
          fc.integer({ min: 1, max: 5 }),
          async (keys, n) => {
            const spine = join(dir, "spine.jsonl");
            await writeRows(
              spine,
              keys.map((k, i) => ({ card_id: k, timestamp: i })),
            );
            const seen: { card_id: string; timestamp: number; shard: number }[] = [];
            for (let i = 0; i < n; i++) {
              const out = join(dir, `part-${i}.jsonl`);
              await writeShardSpine(spine, "card_id", (key) => shardOf(key, n) === i, out);
              for await (const row of readRows(out))
                seen.push({ ...(row as { card_id: string; timestamp: number }), shard: i });
            }
            expect(seen.map((r) => r.timestamp).sort((a, b) => a - b)).toEqual(keys.map((_, i) => i));
            for (const r of seen) expect(shardOf(r.card_id, n)).toBe(r.shard);
          },
        ),
        { numRuns: 50 },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
