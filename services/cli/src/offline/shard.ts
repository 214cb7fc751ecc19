/**
 * `--shard i/n`: split a job by entity so each part holds 1/n of the entities' events in memory
 * (Kubernetes Indexed Jobs run the parts in parallel; their outputs concatenate). An entity's shard
 * is FNV-1a (32-bit, over the key's UTF-8 bytes) modulo n: stable across runs, processes and languages.
 */
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

export function shardOf(key: string, count: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** Writes the spine rows of one shard (by `entity` column) to `out`; returns how many. */
export async function writeShardSpine(
  spine: string,
  entity: string,
  shard: Shard,
  out: string,
): Promise<number> {
  const rows: Record<string, unknown>[] = [];
  for await (const row of readRows(spine)) {
    const key = row[entity];
    if (key === null || key === undefined)
      throw new CliError(`${spine}: a row has no ${entity}`, exitCodes.input);
    if (shardOf(String(key), shard.count) === shard.index) rows.push(row);
  }
  await writeRows(out, rows);
  return rows.length;
}
