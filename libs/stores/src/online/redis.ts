import { Redis, ReplyError, type Result } from "ioredis";
import {
  bytes,
  sortTiles,
  tileAlive,
  ViewRegistry,
  validateBatch,
  validateRange,
  viewKey,
} from "./common.js";
import { OnlineStoreError, StoreRequestError, StoreUnavailableError, withTimeout } from "./errors.js";
import type { EntityTiles, OnlineStore, OnlineView, WriteBatch } from "./types.js";

export interface RedisOnlineStoreConfig {
  kind: "redis";
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prepended to every key, so several deployments (or tests) share one server. Default "tessera:". */
  keyPrefix?: string;
  /** Bound on every call, including the wait for a (re)connection. Default 1000 ms. */
  timeoutMs?: number;
}

// One hash per (view, version, entity): fields `${aggregation}|${tileStart in base 36}` hold tile
// states, `f` "newest event time:visible until", `m` the oldest tile start in the hash (so pruning
// only scans the hash when something has expired). Names are URI-encoded, so ':' '|' '{' '}' never come from
// user data. The entity is the hash tag: all of an entity's views share a Redis Cluster slot.
const tileKey = (prefix: string, view: string, version: string, entity: string) =>
  `${prefix}t:${encodeURIComponent(view)}:${encodeURIComponent(version)}:{${encodeURIComponent(entity)}}`;
const offsetsKey = (prefix: string, group: string, topic: string) =>
  `${prefix}o:{${encodeURIComponent(group)}:${encodeURIComponent(topic)}}`;
const FRESHNESS = "f";

// The flush, atomic because Redis runs a script as one command. Every key is type-checked before
// the first write, since Redis does not roll a script back: a failing batch writes nothing.
// KEYS: n tile hashes, then offset hashes. ARGV: now, n, then per tile hash: retentionMs,
// the `f` value or "", tile count, (field, tileStart, state)…; then per offsets hash:
// count, (partition, offset)….
const FLUSH = `
for _, key in ipairs(KEYS) do
  local t = redis.call('TYPE', key).ok
  if t ~= 'hash' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a hash; nothing was written')
  end
end
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local a = 3
for i = 1, n do
  local key = KEYS[i]
  local retention, fresh, count = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  local oldest = tonumber(redis.call('HGET', key, 'm'))
  local newest = nil
  local fv = {}
  for _ = 1, count do
    local start = tonumber(ARGV[a + 1])
    fv[#fv + 1] = ARGV[a]
    fv[#fv + 1] = ARGV[a + 2]
    if #fv == 1000 then redis.call('HSET', key, unpack(fv)); fv = {} end
    if not oldest or start < oldest then oldest = start end
    if not newest or start > newest then newest = start end
    a = a + 3
  end
  if #fv > 0 then redis.call('HSET', key, unpack(fv)) end
  if fresh ~= '' then redis.call('HSET', key, 'f', fresh) end
  -- A tile is alive while start + retention > now: drop the expired ones, find the new oldest.
  if oldest and oldest + retention <= now then
    oldest = nil
    local expired = {}
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local sep = string.find(field, '|[^|]*$')
      if sep then
        local start = tonumber(string.sub(field, sep + 1), 36)
        if start + retention <= now then
          expired[#expired + 1] = field
          if #expired == 1000 then redis.call('HDEL', key, unpack(expired)); expired = {} end
        elseif not oldest or start < oldest then
          oldest = start
        end
      end
    end
    if #expired > 0 then redis.call('HDEL', key, unpack(expired)) end
  end
  if oldest then redis.call('HSET', key, 'm', oldest) else redis.call('HDEL', key, 'm') end
  -- The hash lives retention past this write, and past its newest tile; never shortened.
  local expireAt = now + retention
  if newest and newest + retention > expireAt then expireAt = newest + retention end
  local current = redis.call('PEXPIRETIME', key)
  if current > expireAt then expireAt = current end
  if redis.call('EXISTS', key) == 1 then redis.call('PEXPIREAT', key, expireAt) end
end
for i = n + 1, #KEYS do
  local count = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, count do
    redis.call('HSET', KEYS[i], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
end
return n
`;

declare module "ioredis" {
  interface RedisCommander<Context> {
    // ioredis flattens array arguments, so a large flush needs no argument spread.
    tesseraFlush(numKeys: number, keys: string[], args: (string | Buffer)[]): Result<number, Context>;
  }
}

// Server replies that mean "not now" rather than "never".
const TRANSIENT_REPLIES = new Set([
  "OOM",
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "READONLY",
  "TRYAGAIN",
  "CLUSTERDOWN",
]);

function translate(err: unknown, what: string): OnlineStoreError {
  if (err instanceof OnlineStoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ReplyError && !TRANSIENT_REPLIES.has(message.split(" ")[0] ?? "")) {
    return new StoreRequestError("redis", `${what}: ${message}`, { cause: err });
  }
  return new StoreUnavailableError("redis", `${what}: ${message}`, { cause: err });
}

/**
 * Redis (standalone or primary with replicas; one server per store). The flush is a Lua script
 * over many keys, so it cannot span Redis Cluster slots; see the README.
 */
export class RedisOnlineStore implements OnlineStore {
  private readonly redis: Redis;
  private readonly views = new ViewRegistry("redis");
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private ready: Promise<void> | undefined;
  private lastError: Error | undefined;
  private closed = false;

  constructor(config: Omit<RedisOnlineStoreConfig, "kind">) {
    this.prefix = config.keyPrefix ?? "tessera:";
    this.timeoutMs = config.timeoutMs ?? 1000;
    this.redis = new Redis(config.url, {
      commandTimeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      // Fail fast while disconnected, and never resend a command after a reconnect: a flush that
      // reported failure must not land later, behind the caller's back, over a newer one.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
    });
    // Kept to say why a call found no connection.
    this.redis.on("error", (err: Error) => {
      this.lastError = err;
    });
    this.redis.on("ready", () => {
      this.lastError = undefined;
    });
    this.redis.defineCommand("tesseraFlush", { lua: FLUSH });
  }

  async applyView(view: OnlineView): Promise<void> {
    this.views.add(view);
    // Nothing to create in Redis; checking the connection here makes a bad URL fail at start-up.
    await this.call("applyView", async () => {
      await this.redis.ping();
    });
  }

  async writeBatch(batch: WriteBatch): Promise<void> {
    validateBatch("redis", this.views, batch);
    const now = Date.now();
    // Grouped by a cheap composite first; the (URI-encoded) key is built once per entity.
    const hashes = new Map<
      string,
      { key: string; retentionMs: number; fresh: string; tiles: (string | Buffer)[] }
    >();
    const hash = (view: string, version: string, entity: string) => {
      const id = `${viewKey(view, version)}\u0000${entity}`;
      let found = hashes.get(id);
      if (!found) {
        const { retentionMs } = this.views.get(view, version);
        found = { key: tileKey(this.prefix, view, version, entity), retentionMs, fresh: "", tiles: [] };
        hashes.set(id, found);
      }
      return found;
    };
    for (const tile of batch.tiles) {
      const h = hash(tile.view, tile.version, tile.entity);
      if (!tileAlive(tile.tileStart, h.retentionMs, now)) continue;
      const state = Buffer.from(tile.state.buffer, tile.state.byteOffset, tile.state.byteLength);
      h.tiles.push(`${tile.aggregation}|${tile.tileStart.toString(36)}`, String(tile.tileStart), state);
    }
    for (const f of batch.freshness) {
      const h = hash(f.view, f.version, f.entity);
      h.fresh = `${f.eventTime}:${now + h.retentionMs}`;
    }
    const offsets = new Map<string, string[]>();
    for (const o of batch.offsets) {
      const key = offsetsKey(this.prefix, o.consumerGroup, o.topic);
      let pairs = offsets.get(key);
      if (!pairs) {
        pairs = [];
        offsets.set(key, pairs);
      }
      pairs.push(String(o.partition), String(o.offset));
    }

    const keys = [...[...hashes.values()].map((h) => h.key), ...offsets.keys()];
    if (keys.length === 0) return;
    const args: (string | Buffer)[] = [String(now), String(hashes.size)];
    for (const h of hashes.values())
      args.push(String(h.retentionMs), h.fresh, String(h.tiles.length / 3), ...h.tiles);
    for (const pairs of offsets.values()) args.push(String(pairs.length / 2), ...pairs);
    await this.call("writeBatch", () => this.redis.tesseraFlush(keys.length, keys, args));
  }

  async readTiles(
    view: string,
    version: string,
    entities: readonly string[],
    fromTileStart: number,
    toTileStart?: number,
  ): Promise<Map<string, EntityTiles>> {
    const { retentionMs } = this.views.get(view, version);
    validateRange("redis", fromTileStart, toTileStart);
    const result = new Map<string, EntityTiles>();
    if (entities.length === 0) return result;
    const replies = await this.call("readTiles", async () => {
      const pipeline = this.redis.pipeline();
      // HGETALL as a flat [field, value, …] array of Buffers: about twice as fast to decode as
      // ioredis' object-building hgetallBuffer on 140-field hashes.
      for (const entity of entities)
        pipeline.callBuffer("HGETALL", tileKey(this.prefix, view, version, entity));
      return (await pipeline.exec()) ?? [];
    });
    const now = Date.now();
    entities.forEach((entity, i) => {
      const [err, reply] = replies[i] ?? [new Error("no reply"), null];
      if (err) throw translate(err, "readTiles");
      const flat = reply as Buffer[];
      const out: EntityTiles = { tiles: [], newestEventTime: null };
      for (let j = 0; j < flat.length; j += 2) {
        const field = flat[j]!.toString();
        const value = flat[j + 1]!;
        const sep = field.lastIndexOf("|");
        if (sep < 0) {
          if (field === FRESHNESS) {
            const [eventTime, until] = value.toString().split(":").map(Number);
            if (until! > now) out.newestEventTime = eventTime!;
          }
          continue;
        }
        const tileStart = Number.parseInt(field.slice(sep + 1), 36);
        if (tileStart < fromTileStart || (toTileStart !== undefined && tileStart > toTileStart)) continue;
        // Expired fields linger until the entity's next write prunes them.
        if (!tileAlive(tileStart, retentionMs, now)) continue;
        out.tiles.push({ aggregation: field.slice(0, sep), tileStart, state: bytes(value) });
      }
      result.set(entity, sortTiles(out));
    });
    return result;
  }

  async readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>> {
    const stored = await this.call("readOffsets", () =>
      this.redis.hgetall(offsetsKey(this.prefix, consumerGroup, topic)),
    );
    return new Map(Object.entries(stored).map(([partition, offset]) => [Number(partition), Number(offset)]));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.redis.status === "ready") {
      await withTimeout("redis", "close", this.timeoutMs, this.redis.quit()).catch(() =>
        this.redis.disconnect(),
      );
    } else {
      this.redis.disconnect();
    }
  }

  /** Runs `fn` once connected, all within the timeout, with errors translated. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError("redis", `${what}: store is closed`);
    try {
      return await withTimeout("redis", what, this.timeoutMs, this.connected().then(fn));
    } catch (err) {
      const translated = translate(err, what);
      if (translated instanceof StoreUnavailableError && this.lastError && this.redis.status !== "ready") {
        throw new StoreUnavailableError("redis", `${what}: not connected (${this.lastError.message})`, {
          cause: err,
        });
      }
      throw translated;
    }
  }

  private connected(): Promise<void> {
    if (this.redis.status === "ready") return Promise.resolve();
    this.ready ??= new Promise<void>((resolve) =>
      this.redis.once("ready", () => {
        this.ready = undefined;
        resolve();
      }),
    );
    return this.ready;
  }
}
