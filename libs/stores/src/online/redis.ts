import { FORMAT_VERSION } from "@tessera/transforms";
import calculateSlot from "cluster-key-slot";
import { Cluster, Redis, ReplyError, type Result } from "ioredis";
import { bytes, ViewRegistry, validateBatch, validateIds, validatePartition } from "./common.js";
import {
  OnlineStoreError,
  StoreFencedError,
  StoreRequestError,
  StoreUnavailableError,
  withTimeout,
} from "./errors.js";
import type { Claim, OnlineStore, OnlineView, WriteBatch } from "./types.js";

export interface RedisOnlineStoreConfig {
  kind: "redis";
  /** A single server (or a primary with replicas): redis://[user:password@]host:port[/db] */
  url?: string;
  /** A Redis Cluster instead: seed nodes as host:port (the rest are discovered). */
  cluster?: string[];
  /** Prepended to every key, so several deployments (or tests) share one server. Default "tessera:". */
  keyPrefix?: string;
  /** Bound on every call, including the wait for a (re)connection. Default 1000 ms. */
  timeoutMs?: number;
  /**
   * Replicas of each written primary that must acknowledge a flush (WAIT) before it resolves; a
   * flush they do not acknowledge within the timeout fails as unavailable and is retried. Redis
   * replicates asynchronously: with 0 (the default) a failover can lose the last acknowledged
   * flushes; with 1 and one replica per primary, a single primary failure loses none.
   */
  replicaAcks?: number;
}

// Keys (names URI-encoded, so ':' '{' '}' never come from user data):
//   <prefix>s<format>:<view>:<version>:{<entity>}   string: 8-byte big-endian owner epoch, then the tile state
//   <prefix>o:{<group>:<topic>}                     hash: <partition> → last offset, e:<partition> → owner
//                                                   epoch, `epoch` → the group's claim counter
// The entity is the hash tag, so all of an entity's views share a Redis Cluster slot; a partition's
// offsets, owners and counter share another. The format version in the key means a changed encoding
// never reads old values: they simply expire.
const stateKey = (prefix: string, view: string, version: string, entity: string) =>
  `${prefix}s${FORMAT_VERSION}:${encodeURIComponent(view)}:${encodeURIComponent(version)}:{${encodeURIComponent(entity)}}`;
const offsetsKey = (prefix: string, group: string, topic: string) =>
  `${prefix}o:{${encodeURIComponent(group)}:${encodeURIComponent(topic)}}`;

// A claim: a new epoch from the counter becomes the partition's owner; returns it and the offset.
const CLAIM = `
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'e:' .. ARGV[1], epoch)
return {epoch, redis.call('HGET', KEYS[1], ARGV[1]) or '-1'}
`;

// The flush. KEYS: the offsets hash when ARGV[1] is 'write' or 'check', then state keys.
// ARGV: mode, partition, epoch, expected offset, offset, now, then per state: expiresAt, value.
// Every check runs before the first write (Redis does not roll a script back, and GETRANGE on a key
// of another type fails here, before anything changed): a refused batch writes nothing.
//   'write' (one server): owner epoch and expected offset checked, states and offset written. (A
//   stored offset above the expected one is this owner's own attempt whose reply was lost.)
//   'states' (a cluster slot): only the states; each refused if a newer epoch wrote it.
//   'check' / 'offset' (a cluster's last step): the partition alone, checked / checked and written.
const FLUSH = `
local mode, partition, epoch = ARGV[1], ARGV[2], tonumber(ARGV[3])
local first = 1
if mode ~= 'states' then
  first = 2
  local owner = tonumber(redis.call('HGET', KEYS[1], 'e:' .. partition) or '0')
  if owner ~= epoch then
    return redis.error_reply('FENCED partition ' .. partition .. ' is owned by epoch ' .. owner .. ', not ' .. epoch)
  end
  local stored = redis.call('HGET', KEYS[1], partition) or '-1'
  if tonumber(stored) < tonumber(ARGV[4]) then
    return redis.error_reply('OFFSET partition ' .. partition .. ' holds offset ' .. stored .. ', not ' .. ARGV[4])
  end
end
for i = first, #KEYS do
  local held = redis.call('GETRANGE', KEYS[i], 0, 7)
  if #held == 8 then
    local e = 0
    for j = 1, 8 do e = e * 256 + string.byte(held, j) end
    if e > epoch then return redis.error_reply('FENCED ' .. KEYS[i] .. ' was written by epoch ' .. e) end
  end
end
local now = tonumber(ARGV[6])
local a = 7
for i = first, #KEYS do
  local expires = tonumber(ARGV[a])
  if expires > now then redis.call('SET', KEYS[i], ARGV[a + 1], 'PXAT', expires) else redis.call('DEL', KEYS[i]) end
  a = a + 2
end
if mode == 'write' or mode == 'offset' then redis.call('HSET', KEYS[1], partition, ARGV[5]) end
return 1
`;

declare module "ioredis" {
  interface RedisCommander<Context> {
    tesseraClaim(key: string, partition: string): Result<[number, string], Context>;
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
  const code = message.split(" ")[0] ?? "";
  if (err instanceof ReplyError && (code === "FENCED" || code === "OFFSET")) {
    return new StoreFencedError(
      "redis",
      code === "FENCED" ? "epoch" : "offset",
      `${what}: ${message.slice(code.length + 1)}`,
    );
  }
  if (err instanceof ReplyError && !TRANSIENT_REPLIES.has(code)) {
    return new StoreRequestError("redis", `${what}: ${message}`, { cause: err });
  }
  return new StoreUnavailableError("redis", `${what}: ${message}`, { cause: err });
}

/**
 * The stored forms of a batch's states: each the writer's epoch (big-endian, so the script compares
 * it byte-wise), then the state. All of them are views into one buffer: a flush writes thousands,
 * and a buffer each costs more than copying their bytes.
 */
function stamped(epoch: number, states: readonly { state: Uint8Array }[]): Buffer[] {
  let total = 0;
  for (const s of states) total += 8 + s.state.byteLength;
  const arena = Buffer.allocUnsafeSlow(total);
  const out: Buffer[] = [];
  let at = 0;
  for (const { state } of states) {
    arena.writeUInt32BE(Math.floor(epoch / 2 ** 32), at);
    arena.writeUInt32BE(epoch >>> 0, at + 4);
    arena.set(state, at + 8);
    out.push(arena.subarray(at, at + 8 + state.byteLength));
    at += 8 + state.byteLength;
  }
  return out;
}

/**
 * Redis: one server (or a primary with replicas), or a Redis Cluster. On one server a flush is one
 * script over every key of the batch, atomic. A cluster cannot run a script across slots, so there a
 * flush checks the partition's owner, writes the states one script per hash slot (each state refused
 * if a newer owner wrote it), then checks and writes the offset: see OnlineStore on why that order is
 * safe.
 */
export class RedisOnlineStore implements OnlineStore {
  private readonly redis: Redis | Cluster;
  private readonly cluster: boolean;
  private readonly views = new ViewRegistry("redis");
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly replicaAcks: number;
  private ready: Promise<void> | undefined;
  private lastError: Error | undefined;
  private closed = false;

  constructor(config: Omit<RedisOnlineStoreConfig, "kind">) {
    this.prefix = config.keyPrefix ?? "tessera:";
    this.timeoutMs = config.timeoutMs ?? 1000;
    this.replicaAcks = config.replicaAcks ?? 0;
    // Fail fast while disconnected, and never resend a command after a reconnect: a flush that
    // reported failure must not land later, behind the caller's back, over a newer one.
    const connection = {
      commandTimeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
    };
    if (config.cluster && config.cluster.length > 0) {
      this.cluster = true;
      this.redis = new Cluster(
        config.cluster.map((node) => {
          const [host, port] = node.split(":");
          return { host: host!, port: Number(port) };
        }),
        // Commands to one node go out back to back on its connection anyway; ioredis' auto-pipelining
        // would group scripts of different slots into one pipeline, which a cluster refuses.
        { redisOptions: connection, enableOfflineQueue: false },
      );
    } else if (config.url) {
      this.cluster = false;
      this.redis = new Redis(config.url, { ...connection, enableOfflineQueue: false });
    } else {
      throw new StoreRequestError("redis", "a Redis store needs a url or cluster nodes");
    }
    // Kept to say why a call found no connection.
    this.redis.on("error", (err: Error) => {
      this.lastError = err;
    });
    this.redis.on("ready", () => {
      this.lastError = undefined;
    });
    this.redis.defineCommand("tesseraClaim", { lua: CLAIM, numberOfKeys: 1 });
    this.redis.defineCommand("tesseraFlush", { lua: FLUSH });
  }

  async applyView(view: OnlineView): Promise<void> {
    this.views.add(view);
    // Nothing to create in Redis; checking the connection here makes a bad URL fail at start-up.
    await this.call("applyView", async () => {
      await this.redis.ping();
    });
  }

  async claimPartition(consumerGroup: string, topic: string, partition: number): Promise<Claim> {
    validatePartition("redis", consumerGroup, topic, partition);
    const [epoch, offset] = await this.call("claimPartition", () =>
      this.redis.tesseraClaim(offsetsKey(this.prefix, consumerGroup, topic), String(partition)),
    );
    return { epoch: Number(epoch), offset: Number(offset) };
  }

  async writeBatch(batch: WriteBatch): Promise<void> {
    validateBatch("redis", this.views, batch);
    const { owner } = batch;
    const now = Date.now();
    const offsets = offsetsKey(this.prefix, owner.consumerGroup, owner.topic);
    const head = (mode: string) => [
      mode,
      String(owner.partition),
      String(owner.epoch),
      String(batch.expectedOffset),
      String(batch.offset),
      String(now),
    ];
    const keys: string[] = [];
    const args: (string | Buffer)[] = [];
    const values = stamped(owner.epoch, batch.states);
    batch.states.forEach((s, i) => {
      keys.push(stateKey(this.prefix, s.view, s.version, s.entity));
      args.push(String(Math.max(0, Math.ceil(s.expiresAt))), values[i]!);
    });
    await this.call("writeBatch", async () => {
      if (!this.cluster) {
        await this.redis.tesseraFlush(keys.length + 1, [offsets, ...keys], [...head("write"), ...args]);
        await this.replicated();
        return;
      }
      await this.redis.tesseraFlush(1, [offsets], head("check"));
      const bySlot = new Map<number, number[]>();
      keys.forEach((key, i) => {
        const slot = calculateSlot(key);
        const found = bySlot.get(slot);
        if (found) found.push(i);
        else bySlot.set(slot, [i]);
      });
      await Promise.all(
        [...bySlot.values()].map((indexes) =>
          this.redis.tesseraFlush(
            indexes.length,
            indexes.map((i) => keys[i]!),
            [...head("states"), ...indexes.flatMap((i) => [args[2 * i]!, args[2 * i + 1]!])],
          ),
        ),
      );
      // The states must survive a failover before the offset says they are there.
      await this.replicated();
      await this.redis.tesseraFlush(1, [offsets], head("offset"));
      await this.replicated();
    });
  }

  /** Waits until `replicaAcks` replicas of every primary acknowledged what was written so far. */
  private async replicated(): Promise<void> {
    if (this.replicaAcks === 0) return;
    const primaries = this.redis instanceof Cluster ? this.redis.nodes("master") : [this.redis];
    const wait = Math.max(1, this.timeoutMs - 100);
    const acks = await Promise.all(
      primaries.map((node) => node.call("WAIT", this.replicaAcks, wait) as Promise<number>),
    );
    if (acks.some((n) => n < this.replicaAcks)) {
      throw new StoreUnavailableError(
        "redis",
        `writeBatch: ${this.replicaAcks} replica(s) did not acknowledge within ${wait} ms (got ${acks.join(", ")})`,
      );
    }
  }

  async readStates(
    view: string,
    version: string,
    entities: readonly string[],
  ): Promise<(Uint8Array | null)[]> {
    this.views.get(view, version);
    validateIds("redis", entities);
    if (entities.length === 0) return [];
    const keys = entities.map((entity) => stateKey(this.prefix, view, version, entity));
    const replies = await this.call("readStates", () =>
      this.cluster
        ? // MGET cannot span slots: one GET per key, sent back to back on each node's connection.
          Promise.all(keys.map((key) => this.redis.getBuffer(key)))
        : (this.redis as Redis).mgetBuffer(keys),
    );
    return replies.map((reply) => (reply === null ? null : bytes(reply).subarray(Math.min(8, reply.length))));
  }

  async readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>> {
    const stored = await this.call("readOffsets", () =>
      this.redis.hgetall(offsetsKey(this.prefix, consumerGroup, topic)),
    );
    const out = new Map<number, number>();
    for (const [field, offset] of Object.entries(stored)) {
      if (/^\d+$/.test(field) && Number(offset) >= 0) out.set(Number(field), Number(offset));
    }
    return out;
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
