/**
 * `--shard i/n`: split a snapshot so Kubernetes Indexed Jobs run the parts in parallel; their outputs
 * concatenate to the unsharded one (row order aside).
 *
 * By partition (the default on an archive): shard i owns the source topic's partitions p with
 * p mod n = i, and the spine's entities whose key Kafka's default partitioner (murmur2 of the key's
 * UTF-8 bytes, modulo the partition count) sends there. Topics are keyed by entity, so those are all
 * of the events its rows can read, and it opens only those partitions' files. When n does not divide
 * the partition count, shards own ⌈P/n⌉ or ⌊P/n⌋ partitions; with n > P, shards i ≥ P own none
 * and write only the header.
 *
 * By entity (any input: files without partitions, a topic not keyed by the entity): shard i owns
 * the entities whose FNV-1a hash (32-bit, over the key's UTF-8 bytes) modulo n is i; each shard
 * reads every file its time range needs.
 */
import { partitionForKey } from "@tessera/kafka";
import type { PartitionShard } from "@tessera/stores";
import { readRows, writeRows } from "@tessera/stores";
import { CliError, exitCodes } from "../errors.js";

export interface Shard {
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index >= count) {
    throw new CliError(`--shard ${text}: use i/n with 0 ≤ i < n, e.g. 0/4`, exitCodes.usage);
  }
  return { index, count };
}

/** FNV-1a of the key modulo count: the entity shard, stable across runs, processes and languages. */
export function shardOf(key: string, count: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** The partitions and entities of shard i/n of a topic with `partitions` partitions. */
export function partitionShard(
  shard: Shard,
  partitions: number,
): PartitionShard & { owns(key: string): boolean } {
  const partitionOf = (key: string) => partitionForKey(key, partitions);
  return {
    partitions: (p) => p % shard.count === shard.index,
    partitionOf,
    owns: (key) => partitionOf(key) % shard.count === shard.index,
  };
}

/** Writes the spine rows whose `entity` the shard owns to `out`; returns how many. */
export async function writeShardSpine(
  spine: string,
  entity: string,
  owns: (key: string) => boolean,
  out: string,
): Promise<number> {
  const rows: Record<string, unknown>[] = [];
  for await (const row of readRows(spine)) {
    const key = row[entity];
    if (key === null || key === undefined)
      throw new CliError(`${spine}: a row has no ${entity}`, exitCodes.input);
    if (owns(String(key))) rows.push(row);
  }
  await writeRows(out, rows);
  return rows.length;
}
