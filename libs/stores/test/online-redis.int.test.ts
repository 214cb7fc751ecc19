import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services, uniqueName } from "../../../test/support/index.js";
import { createOnlineStore, type OnlineStore, StoreRequestError } from "../src/index.js";
import { onlineStoreContract } from "./online-contract.js";

const keyPrefix = `${uniqueName("test-online")}:`;

onlineStoreContract("redis", {
  open: () => createOnlineStore({ kind: "redis", url: services().REDIS_URL, keyPrefix }),
  remote: {
    get upstream() {
      const url = new URL(services().REDIS_URL);
      return { host: url.hostname, port: Number(url.port || 6379) };
    },
    at: (port, timeoutMs) => {
      // Same credentials and database as the real server, another address.
      const url = new URL(services().REDIS_URL);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return createOnlineStore({ kind: "redis", url: url.toString(), keyPrefix, timeoutMs });
    },
  },
});

describe("redis online store: layout and flush", () => {
  let redis: Redis;
  let store: OnlineStore;
  const view = { name: "clicks", version: "abc123", retentionMs: 2000 };
  const key = (entity: string) => `${keyPrefix}t:clicks:abc123:{${entity}}`;

  beforeAll(async () => {
    redis = new Redis(services().REDIS_URL);
    store = createOnlineStore({ kind: "redis", url: services().REDIS_URL, keyPrefix });
    await store.applyView(view);
  });
  afterAll(async () => {
    await store.close();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("keeps one hash per entity, hash-tagged by entity, expiring with the entity", async () => {
    const now = Date.now();
    await store.writeBatch({
      tiles: [
        {
          view: "clicks",
          version: "abc123",
          entity: "u1",
          aggregation: "count",
          tileStart: now,
          state: new Uint8Array([1]),
        },
      ],
      freshness: [{ view: "clicks", version: "abc123", entity: "u1", eventTime: now }],
      offsets: [],
    });
    expect(await redis.type(key("u1"))).toBe("hash");
    expect((await redis.hkeys(key("u1"))).sort()).toEqual([`count|${now.toString(36)}`, "f", "m"]);
    const ttl = await redis.pttl(key("u1"));
    expect(ttl).toBeGreaterThan(1500);
    expect(ttl).toBeLessThanOrEqual(2000);
  });

  it("drops expired tile fields on the next write, and the key once idle", async () => {
    const written = Date.now();
    const old = written - 1500;
    const tile = (tileStart: number) => ({
      view: "clicks",
      version: "abc123",
      entity: "u2",
      aggregation: "count",
      tileStart,
      state: new Uint8Array([7]),
    });
    await store.writeBatch({ tiles: [tile(old)], freshness: [], offsets: [] });
    await new Promise((resolve) => setTimeout(resolve, 600));
    await store.writeBatch({ tiles: [tile(Date.now())], freshness: [], offsets: [] });
    const fields = await redis.hkeys(key("u2"));
    expect(fields).not.toContain(`count|${old.toString(36)}`);
    expect(fields).toHaveLength(2); // the new tile and "m"
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect(await redis.exists(key("u2"))).toBe(0);
  });

  it("writes nothing when one key of the batch has the wrong type", async () => {
    const group = uniqueName("g");
    await redis.set(key("intruder"), "not a hash");
    const now = Date.now();
    const attempt = store.writeBatch({
      tiles: ["u3", "intruder", "u4"].map((entity) => ({
        view: "clicks",
        version: "abc123",
        entity,
        aggregation: "count",
        tileStart: now,
        state: new Uint8Array([1]),
      })),
      freshness: [],
      offsets: [{ consumerGroup: group, topic: "t", partition: 0, offset: 9 }],
    });
    await expect(attempt).rejects.toBeInstanceOf(StoreRequestError);
    await expect(attempt).rejects.toThrow(/WRONGTYPE/);
    expect(await redis.exists(key("u3"), key("u4"))).toBe(0);
    expect(await store.readOffsets(group, "t")).toEqual(new Map());
  });
});
